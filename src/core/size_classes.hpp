// Size classes: 16-byte steps up to 64 bytes, then four classes per doubling
// up to kLargeBlockMax.  Worst-case internal waste is 25% above 64 bytes.
// Every class is a multiple of 16, so every block is 16-aligned: the x86-64
// ABI's malloc alignment, which compilers assume (clang annotates malloc
// results with it).  There is no 8-byte class: every block has a second
// word, where a free writes its freed key (misuse.hpp) at a fixed offset;
// dropping the class cost no measurable peak RSS on bench/'s suite
// (geomean 1.01x, every workload within noise).
// A block of class c sits at page_start + i * size, so it is aligned to the
// largest power of two dividing its size (capped at kMaxNaturalAlign):
// aligned requests mostly become ordinary requests of a suitable class.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "core/config.hpp"

namespace bop::core {

// Class index for a size in (64, kLargeBlockMax]: the doubling it falls in,
// then which quarter of that doubling.
inline constexpr unsigned kTinyClasses = 4;  // 16, 32, 48, 64

constexpr unsigned class_of_large(std::size_t size) {
  std::size_t s = size - 1;
  unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(s));
  return kTinyClasses + (msb - 6u) * 4u + static_cast<unsigned>((s >> (msb - 2u)) & 3u);
}

constexpr std::size_t class_size_formula(unsigned c) {
  if (c < kTinyClasses) return (c + 1) * 16;
  unsigned k = (c - kTinyClasses) / 4, r = (c - kTinyClasses) % 4;
  return (std::size_t{64} << k) + (r + 1) * (std::size_t{16} << k);
}

inline constexpr unsigned kClassCount = class_of_large(kLargeBlockMax) + 1;

inline constexpr auto kClassSize = [] {
  std::array<std::uint32_t, kClassCount> sizes{};
  for (unsigned c = 0; c < kClassCount; ++c)
    sizes[c] = static_cast<std::uint32_t>(class_size_formula(c));
  return sizes;
}();

// Size 0 is served as size 1 (class 0): malloc(0) returns a unique block.
constexpr unsigned size_to_class(std::size_t size) {
  if (size <= 16) return 0;
  if (size <= 64) return static_cast<unsigned>((size - 1) / 16);
  return class_of_large(size);
}

// Direct table index for small sizes: one slot per 16 bytes (every class is
// a multiple of 16, so a slot never straddles two classes).
constexpr std::size_t direct_slot(std::size_t size) {
  return (size + 15) >> 4;
}

inline constexpr auto kDirectClass = [] {
  std::array<std::uint8_t, kDirectSlots> classes{};
  for (std::size_t slot = 0; slot < kDirectSlots; ++slot)
    classes[slot] = static_cast<std::uint8_t>(size_to_class(slot * 16));
  return classes;
}();

constexpr std::size_t class_alignment(unsigned c) {
  std::size_t size = kClassSize[c];
  std::size_t align = size & (~size + 1);  // lowest set bit
  return align < kMaxNaturalAlign ? align : kMaxNaturalAlign;
}

constexpr SegmentKind class_kind(unsigned c) {
  std::size_t size = kClassSize[c];
  return size <= kSmallBlockMax ? SegmentKind::kSmall : SegmentKind::kMedium;
}

// The smallest class that holds `size` bytes aligned to `align`, or
// kClassCount when only a huge block can (size or alignment too big).
constexpr unsigned aligned_class(std::size_t size, std::size_t align) {
  if (align > kMaxNaturalAlign) return kClassCount;
  std::size_t need = size > align ? size : align;
  if (need > kLargeBlockMax) return kClassCount;
  unsigned c = size_to_class(need);
  while (c < kClassCount && class_alignment(c) < align) ++c;
  return c;
}

// A realloc to `size` (at most block_size) stays in its block while it uses
// at least half of it, or when no smaller class exists.
constexpr bool realloc_keeps_block(std::size_t size, std::size_t block_size) {
  return size >= block_size / 2 || block_size == kClassSize[0];
}

static_assert(kClassSize[kClassCount - 1] == kLargeBlockMax);
static_assert(size_to_class(64) == 3 && size_to_class(65) == 4 && kClassSize[4] == 80);
static_assert(size_to_class(24) == 1 && kClassSize[1] == 32 && size_to_class(16) == 0 &&
              size_to_class(17) == 1);
static_assert(size_to_class(1024) == 19 && kClassSize[19] == 1024);
static_assert(class_alignment(0) == 16 && class_alignment(2) == 16 && class_alignment(4) == 16);
static_assert(kClassCount <= 255, "class index must fit a byte");
static_assert(kDirectClass[direct_slot(1)] == 0 && kDirectClass[direct_slot(17)] == 1 &&
              kDirectClass[direct_slot(1024)] == size_to_class(1024));
static_assert(aligned_class(1, 64) == size_to_class(64));
static_assert(aligned_class(5000, 4096) == size_to_class(8192));

}  // namespace bop::core
