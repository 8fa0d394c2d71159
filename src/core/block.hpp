// A free block: its first word links it into a free list.  In checked builds
// the link is stored encoded (xor with a secret key and the block's own
// address), so a stray write or a double free shows up as a link that decodes
// outside its page instead of silently corrupting the heap.
#pragma once

#include <cstdint>

namespace bop::core {

struct Block {
  std::uintptr_t link;
};

#if BOP_CHECKED
extern std::uintptr_t g_link_key;
inline Block* block_next(const Block* b) {
  return reinterpret_cast<Block*>(b->link ^ g_link_key ^ reinterpret_cast<std::uintptr_t>(b));
}
inline void block_set_next(Block* b, Block* next) {
  b->link =
      reinterpret_cast<std::uintptr_t>(next) ^ g_link_key ^ reinterpret_cast<std::uintptr_t>(b);
}
#else
inline Block* block_next(const Block* b) {
  return reinterpret_cast<Block*>(b->link);
}
inline void block_set_next(Block* b, Block* next) {
  b->link = reinterpret_cast<std::uintptr_t>(next);
}
#endif

}  // namespace bop::core
