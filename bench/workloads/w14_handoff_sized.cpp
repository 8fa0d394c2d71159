/* w14_handoff_sized: w13_handoff's work, freed with sized delete.
 *
 * Exactly the steps of w13_handoff (same seeds, same sizes), but every block
 * goes back through `operator delete(void *, size_t)` with the size it was
 * allocated with, as C++14 code compiled with sized deallocation does.
 */
#include <new>

#include "handoff.hpp"

struct SizedNew {
  static void* alloc(size_t n) { return ::operator new(n); }
  static void release(void* p, size_t n) { ::operator delete(p, n); }
};

int main(int argc, char** argv) {
  return handoff::main<SizedNew>(argc, argv, "handoff_sized");
}
