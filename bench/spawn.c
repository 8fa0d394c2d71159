/* spawn: runs one benchmark program and reports its peak RSS.
 *
 *   spawn RESULT_FILE PROGRAM [ARGS...]
 *
 * The harness (bench/compare) does not start workloads itself: on Linux a
 * child's ru_maxrss keeps the high-water mark of the memory it had before
 * exec, i.e. a copy of the (large) Python interpreter. This launcher is small
 * and linked statically, so that inherited floor is a few hundred KiB.
 * If BENCH_PRELOAD is set, the child gets it as LD_PRELOAD (the launcher
 * itself runs without the allocator under test).
 *
 * RESULT_FILE receives one line: "status=<wait status> maxrss_kb=<n>
 * wall_s=<seconds> cpu_s=<user + system seconds>"; stdout and stderr pass
 * through.
 */
#define _GNU_SOURCE 1
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s RESULT_FILE PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }
  const char *pre = getenv("BENCH_PRELOAD");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 2;
  }
  if (pid == 0) {
    if (pre && *pre) setenv("LD_PRELOAD", pre, 1);
    unsetenv("BENCH_PRELOAD");
    execv(argv[2], argv + 2);
    perror(argv[2]);
    _exit(127);
  }
  /* pass a kill of the launcher on to the program */
  signal(SIGINT, SIG_IGN);
  int status = 0;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  FILE *f = fopen(argv[1], "w");
  if (!f) {
    perror(argv[1]);
    return 2;
  }
  fprintf(f, "status=%d maxrss_kb=%ld wall_s=%.6f cpu_s=%.6f\n", status, ru.ru_maxrss,
          (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9,
          (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
              (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6);
  fclose(f);
  return 0;
}
