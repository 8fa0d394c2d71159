/* A program using an installed bop, built several ways by the install tests
 * (find_package with bop::bop, bop::bop_static or bop::override; cc with
 * pkg-config bop or bop-override).  It checks the header against the library
 * and prints what the tests compare:
 *
 *   version=0.1.0              BOP_VERSION_STRING
 *   bop_alloc_in=PATH          the object defining bop_alloc ("executable"
 *   malloc_in=PATH             or a library path), and the one whose malloc
 *                              the program and its libraries call
 *   malloc_counted=N           of 1000 strdup calls, how many bop counted
 *                              (run with BOP_STATS=1)
 *
 * Failed checks print a line starting with FAIL; the exit status counts them. */
#define _GNU_SOURCE
#include <bop/bop.h>

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

enum { kBlocks = 1000 };
char* consumer_blocks[kBlocks]; /* external, so the allocations are not optimised away */

static int failures = 0;

static void check(int ok, const char* what) {
  if (!ok) {
    printf("FAIL %s\n", what);
    ++failures;
  }
}

/* "executable" or the path of the loaded object containing addr. */
static const char* object_of(void* addr) {
  Dl_info info, self;
  if (addr == NULL || dladdr(addr, &info) == 0) return "(none)";
  if (dladdr((void*)&object_of, &self) != 0 && info.dli_fbase == self.dli_fbase)
    return "executable";
  return info.dli_fname;
}

int main(void) {
  char version[32];
  snprintf(version, sizeof version, "%d.%d.%d", BOP_VERSION_MAJOR, BOP_VERSION_MINOR,
           BOP_VERSION_PATCH);
  check(strcmp(version, BOP_VERSION_STRING) == 0, "BOP_VERSION_STRING disagrees with the parts");
  check(bop_version() == BOP_VERSION, "bop_version() differs from the header's BOP_VERSION");

  char* p = bop_alloc(100);
  check(p != NULL && bop_malloc_usable_size(p) >= 100, "bop_alloc(100)");
  if (p != NULL) memset(p, 1, 100);
  bop_dealloc(p);

  /* Allocate through libc (strdup) and free through a pointer looked up at
   * run time: the program never names malloc or free, so a static override
   * linked as an ordinary archive (whose malloc member nothing pulls in)
   * would leave glibc's malloc in place and malloc_counted at 0. */
  void (*free_fn)(void*) = (void (*)(void*))dlsym(RTLD_DEFAULT, "free");
  check(free_fn != NULL, "dlsym(free)");
  bop_stats before, after;
  bop_stats_get(&before);
  for (int i = 0; i < kBlocks; ++i) consumer_blocks[i] = strdup("a string of a few bytes");
  for (int i = 0; i < kBlocks && free_fn != NULL; ++i) free_fn(consumer_blocks[i]);
  bop_stats_get(&after);

  printf("version=%s\n", BOP_VERSION_STRING);
  printf("bop_alloc_in=%s\n", object_of((void*)&bop_alloc));
  printf("malloc_in=%s\n", object_of(dlsym(RTLD_DEFAULT, "malloc")));
  printf("malloc_counted=%llu\n", after.allocations - before.allocations);
  return failures;
}
