/* w19_tiny: a tiny single-thread program; peak RSS is the figure. See tiny.h. */
#define TINY_THREADS 1
#include "tiny.h"

int main(int argc, char** argv) {
  return tiny_main(argc, argv, "tiny");
}
