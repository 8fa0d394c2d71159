// Block index without a division, for the "is p the start of a block?"
// tests of the misuse checks (misuse.cpp) and the checked build's free fast
// path (hardening_inline.hpp).
//
// For a class size d = odd << k, the offset times the inverse of odd
// (mod 2^32), rotated right by k, is offset / d when d divides the offset,
// and above 2^32 / d (so above any page's block count) when it does not.
// One multiply and one rotate; the caller's compare with `reserved` is the
// whole test (a 64-bit division costs tens of cycles).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "core/size_classes.hpp"
#include "core/types.hpp"

namespace bop::core {

struct ExactDivisor {
  std::uint32_t inverse;
  std::uint8_t shift;
};

constexpr std::uint32_t odd_inverse(std::uint32_t odd) {
  std::uint32_t x = odd;  // correct to 3 bits; each Newton step doubles them
  for (int i = 0; i < 4; ++i) x *= 2 - odd * x;
  return x;
}

inline constexpr auto kExactDivisor = [] {
  std::array<ExactDivisor, kClassCount> t{};
  for (unsigned c = 0; c < kClassCount; ++c) {
    auto shift = static_cast<unsigned>(std::countr_zero(kClassSize[c]));
    t[c] = {odd_inverse(kClassSize[c] >> shift), static_cast<std::uint8_t>(shift)};
  }
  return t;
}();

// block_index: multiples of the class size map to their index,
// the offsets between them far past any block count.
static_assert([] {
  for (unsigned c = 0; c < kClassCount; ++c) {
    std::uint32_t d = kClassSize[c];
    ExactDivisor e = kExactDivisor[c];
    std::uint32_t blocks = static_cast<std::uint32_t>((std::size_t{1} << kMediumPageShift) / d);
    for (std::uint32_t i = 0; i < blocks; i += 1 + blocks / 64) {
      if (std::rotr(i * d * e.inverse, e.shift) != i) return false;
      for (std::uint32_t off : {1u, 4u, d / 2, d - 1})
        if (std::rotr((i * d + off) * e.inverse, e.shift) <= blocks) return false;
    }
  }
  return true;
}());
static_assert((kLargeBlockMax << 1) <= ~std::uint32_t{0}, "page offsets fit 32 bits");

// offset / block size if the offset is a multiple of it, else a value
// larger than any block count.
inline std::uint32_t block_index(const Page* page, std::size_t offset) noexcept {
  ExactDivisor d = kExactDivisor[page->size_class];
  return std::rotr(static_cast<std::uint32_t>(offset) * d.inverse, d.shift);
}

}  // namespace bop::core
