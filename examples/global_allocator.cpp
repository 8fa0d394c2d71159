// Installing bop as the program's global allocator: the C++ counterpart of
//
//   #[global_allocator]
//   static GLOBAL: BopAllocator = BopAllocator;
//
// After BOP_GLOBAL_ALLOCATOR(GLOBAL) every operator new/delete of the program
// (std::vector, std::string, std::unique_ptr, ...) is served by GLOBAL.
#include <bop/allocator.hpp>
#include <bop/global.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

static bop::BopAllocator GLOBAL;
BOP_GLOBAL_ALLOCATOR(GLOBAL);

namespace {

bool is_aligned(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

int check(bool ok, const char* what) {
  std::printf("  %-44s %s\n", what, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main() {
  int failures = 0;
  std::printf("Standard containers, served by bop through operator new:\n");

  std::vector<int> numbers;  // Vec<i32>
  for (int i = 0; i < 1000; ++i) numbers.push_back(i);
  failures +=
      check(numbers.size() == 1000 && numbers[999] == 999, "std::vector<int> with 1000 elements");

  std::string text = "Hello from bop! ";  // String
  for (int i = 0; i < 5; ++i) text += "more text ";
  failures += check(text.size() == 16 + 50, "std::string grown to 66 bytes");

  auto boxed = std::make_unique<std::uint64_t>(42);  // Box<u64>
  failures += check(*boxed == 42, "std::unique_ptr<uint64_t> holding 42");

  std::printf("Direct calls through bop::utils:\n");
  void* block = bop::utils::alloc(1024);
  std::size_t usable = bop::utils::malloc_usable_size(block);
  std::printf("  alloc(1024): usable size %zu\n", usable);
  failures += check(block != nullptr && usable >= 1024, "usable size >= 1024");
  std::memset(block, 0xAB, 1024);

  void* aligned64 = bop::utils::alloc_aligned(64, 256);
  void* aligned512 = bop::utils::alloc_aligned(512, 1000);
  failures += check(aligned64 != nullptr && is_aligned(aligned64, 64),
                    "alloc_aligned(64, 256) is 64-aligned");
  failures += check(aligned512 != nullptr && is_aligned(aligned512, 512),
                    "alloc_aligned(512, 1000) is 512-aligned");

  auto* zeroed = static_cast<unsigned char*>(bop::utils::zalloc(256));
  bool all_zero = zeroed != nullptr;
  for (int i = 0; all_zero && i < 256; ++i) all_zero = zeroed[i] == 0;
  failures += check(all_zero, "zalloc(256) is all zero");

  bop::utils::dealloc_sized(block, 1024);
  bop::utils::dealloc_sized(aligned64, 256);
  bop::utils::dealloc_sized(aligned512, 1000);
  bop::utils::dealloc_sized(zeroed, 256);
  std::printf("  dealloc_sized of each block: done\n");

  std::printf(failures == 0 ? "All checks passed.\n" : "%d check(s) failed.\n", failures);
  return failures == 0 ? 0 : 1;
}
