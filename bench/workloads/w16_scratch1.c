/* w16_scratch1: passive false sharing shape (cache-scratch), 1 worker.
 * See scratch.h. */
#define SCRATCH_THREADS 1
#include "scratch.h"

int main(int argc, char** argv) {
  return scratch_main(argc, argv, "scratch1");
}
