/* w13_handoff: larson-like server hand-off with operator new / unsized delete.
 *
 * See handoff.hpp for the shape: worker threads replace random blocks
 * (10 B - 1 KB), swap some with other running workers, and hand their whole
 * live set to a freshly created successor thread that frees it. This variant
 * frees with plain `operator delete(void *)`; w14_handoff_sized does the same
 * work with sized delete, so the two times under one allocator show what
 * the size argument saves.
 */
#include <new>

#include "handoff.hpp"

struct UnsizedNew {
  static void* alloc(size_t n) { return ::operator new(n); }
  static void release(void* p, size_t) { ::operator delete(p); }
};

int main(int argc, char** argv) {
  return handoff::main<UnsizedNew>(argc, argv, "handoff");
}
