// Fill patterns for checking block contents (fuzz/ and bench/soak): byte i of
// a block with seed s is byte i % 8 of pattern_word(s, i / 8), so a pattern can
// be written or checked over any range of a block, a word at a time, and a
// block that moves (realloc) keeps its seed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace bop_test {

inline std::uint64_t pattern_word(std::uint64_t seed, std::size_t word) {
  std::uint64_t x = (seed ^ (word * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 31);
}

inline unsigned char pattern_byte(std::uint64_t seed, std::size_t i) {
  return static_cast<unsigned char>(pattern_word(seed, i / 8) >> (i % 8 * 8));
}

// Writes the pattern of `seed` to bytes [from, to) of the block at p.
inline void pattern_fill(void* p, std::uint64_t seed, std::size_t from, std::size_t to) {
  auto* bytes = static_cast<unsigned char*>(p);
  std::size_t i = from;
  for (; i < to && i % 8 != 0; ++i) bytes[i] = pattern_byte(seed, i);
  for (; i + 8 <= to; i += 8) {
    std::uint64_t w = pattern_word(seed, i / 8);
    std::memcpy(bytes + i, &w, 8);
  }
  for (; i < to; ++i) bytes[i] = pattern_byte(seed, i);
}

// The first byte of [0, to) that does not hold the pattern, or `to` if none.
inline std::size_t pattern_mismatch(const void* p, std::uint64_t seed, std::size_t to) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  std::size_t i = 0;
  for (; i + 8 <= to; i += 8) {
    std::uint64_t w = pattern_word(seed, i / 8), got;
    std::memcpy(&got, bytes + i, 8);
    if (got != w) break;
  }
  for (; i < to; ++i)
    if (bytes[i] != pattern_byte(seed, i)) return i;
  return to;
}

}  // namespace bop_test
