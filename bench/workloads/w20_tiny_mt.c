/* w20_tiny_mt: a tiny program with 4 threads; peak RSS is the figure. See tiny.h. */
#define TINY_THREADS 4
#include "tiny.h"

int main(int argc, char** argv) {
  return tiny_main(argc, argv, "tiny_mt");
}
