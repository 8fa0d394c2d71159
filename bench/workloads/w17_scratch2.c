/* w17_scratch2: passive false sharing shape (cache-scratch), 2 workers.
 * See scratch.h. */
#define SCRATCH_THREADS 2
#include "scratch.h"

int main(int argc, char** argv) {
  return scratch_main(argc, argv, "scratch2");
}
