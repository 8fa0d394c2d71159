/* whichmalloc: prints the shared object that provides malloc, free, realloc
 * and calloc in this process, so the harness can check that an LD_PRELOADed
 * allocator really replaced the C library's. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static const char *owner(void *fn) {
  Dl_info info;
  if (dladdr(fn, &info) && info.dli_fname) return info.dli_fname;
  return "?";
}

int main(void) {
  /* volatile: take the addresses the dynamic linker bound, not a builtin */
  void *volatile m = (void *)&malloc;
  void *volatile f = (void *)&free;
  void *volatile r = (void *)&realloc;
  void *volatile c = (void *)&calloc;
  void *p = malloc(100);
  p = realloc(p, 1000);
  free(p);
  printf("malloc=%s\nfree=%s\nrealloc=%s\ncalloc=%s\n", owner(m), owner(f), owner(r), owner(c));
  return 0;
}
