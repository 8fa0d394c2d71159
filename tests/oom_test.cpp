// oom_test: running out of memory is a return value, never a crash.
// Linked with bop::override, so malloc and operator new are bop's.  Each
// exhaustion test runs in a forked child whose address space is capped
// (RLIMIT_AS = current size + 256 MiB) and allocates until failure.
#include <bop/bop.h>

#include <gtest/gtest.h>

#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "test_util.hpp"

using namespace bop_test;

namespace {

constexpr std::size_t kHeadroom = 256 * MiB;
constexpr std::size_t kSizeMax = static_cast<std::size_t>(-1);

// Caps this process's address space at its current size + headroom.
bool LimitAddressSpace() {
  std::size_t vm = VmBytes();
  if (vm == 0) return false;
  rlimit rl;
  if (getrlimit(RLIMIT_AS, &rl) != 0) return false;
  rl.rlim_cur = vm + kHeadroom;
  return setrlimit(RLIMIT_AS, &rl) == 0;
}

// A singly linked chain through the blocks themselves, so tracking them
// needs no memory of its own.
struct Chain {
  void* head = nullptr;
  std::size_t count = 0;
  std::size_t bytes = 0;
};

void Push(Chain& c, void* p, std::size_t size) {
  *static_cast<void**>(p) = c.head;
  c.head = p;
  c.count++;
  c.bytes += size;
}

template <class FreeFn>
void FreeChain(Chain& c, FreeFn free_fn) {
  while (c.head) {
    void* next = *static_cast<void**>(c.head);
    free_fn(c.head);
    c.head = next;
  }
  c = Chain{};
}

// Allocates `size` blocks with alloc_fn until it returns NULL.  Returns the
// errno of the failure, or -1 if 8 GiB went by without one (limit ignored?).
template <class AllocFn>
int FillUntilNull(Chain& c, std::size_t size, AllocFn alloc_fn) {
  for (;;) {
    errno = 0;
    void* p = alloc_fn(size);
    if (p == nullptr) return errno;
    Push(c, p, size);
    if (c.bytes > 8192 * MiB) return -1;
  }
}

// Child body: exhaust with one size through bop_alloc, check the failure,
// check that further failing calls behave, free, and allocate again.
int ExhaustBopAlloc(std::size_t size) {
  bop_dealloc(bop_alloc(size));  // warm up this size class before the cap
  CHILD_CHECK(LimitAddressSpace());
  Chain c;
  int err = FillUntilNull(c, size, bop_alloc);
  CHILD_CHECK(err == ENOMEM);
  // The cap left 256 MiB: at least a quarter of it must have been usable.
  if (c.bytes < 64 * MiB) {
    std::fprintf(stderr, "only %zu MiB of %zu-byte blocks before ENOMEM\n", c.bytes / MiB, size);
    return 1;
  }
  // More requests at the limit fail cleanly (or succeed from leftovers).
  for (int i = 0; i < 4; ++i) {
    errno = 0;
    void* p = i == 0   ? bop_zalloc(size)
              : i == 1 ? bop_calloc(size, 2)
              : i == 2 ? bop_alloc_aligned(4096, size)
                       : bop_alloc(64 * MiB);
    CHILD_CHECK(p != nullptr || errno == ENOMEM);
    if (p) bop_dealloc(p);
  }
  // A realloc that cannot grow leaves the block alone.
  std::uint64_t* head = static_cast<std::uint64_t*>(c.head);
  std::uint64_t first = head[0];
  errno = 0;
  void* grown = bop_realloc(head, 128 * MiB);
  if (grown == nullptr) {
    CHILD_CHECK(errno == ENOMEM);
    CHILD_CHECK(head[0] == first);
  } else {
    c.head = grown;  // (it found room; keep the chain valid)
  }
  FreeChain(c, bop_dealloc);
  // After freeing, the same allocations work again.
  Chain again;
  for (std::size_t i = 0; i < std::max<std::size_t>(64 * MiB / size, 1) && i < 16; ++i) {
    void* p = bop_alloc(size);
    CHILD_CHECK(p != nullptr);
    Push(again, p, size);
  }
  FreeChain(again, bop_dealloc);
  void* small = bop_alloc(16);
  CHILD_CHECK(small != nullptr);
  bop_dealloc(small);
  // The freed memory also serves a different size, half the headroom at
  // once: at the limit bop gives back what it keeps before failing.
  void* big = bop_alloc(kHeadroom / 2);
  if (big == nullptr) {
    std::fprintf(stderr,
                 "after freeing %zu-byte blocks, bop_alloc(%zu MiB) fails: freed memory still "
                 "holds the address space\n",
                 size, kHeadroom / 2 / MiB);
    return 1;
  }
  bop_dealloc(big);
  return 0;
}

// The same through malloc (the override), which must report ENOMEM too.
int ExhaustMalloc(std::size_t size) {
  std::free(std::malloc(size));
  CHILD_CHECK(LimitAddressSpace());
  Chain c;
  int err = FillUntilNull(c, size, [](std::size_t n) { return std::malloc(n); });
  CHILD_CHECK(err == ENOMEM);
  CHILD_CHECK(c.bytes >= 64 * MiB);
  errno = 0;
  CHILD_CHECK(std::malloc(512 * MiB) == nullptr && errno == ENOMEM);
  errno = 0;
  CHILD_CHECK(std::calloc(512, MiB) == nullptr && errno == ENOMEM);
  void* aligned = reinterpret_cast<void*>(1);
  CHILD_CHECK(posix_memalign(&aligned, 4096, 512 * MiB) == ENOMEM);
  CHILD_CHECK(aligned == reinterpret_cast<void*>(1));  // untouched on failure
  FreeChain(c, [](void* p) { std::free(p); });
  void* p = std::malloc(size);
  CHILD_CHECK(p != nullptr);
  std::free(p);
  void* big = std::malloc(kHeadroom / 2);  // freed memory serves other sizes
  CHILD_CHECK(big != nullptr);
  std::free(big);
  return 0;
}

class OomBySize : public ::testing::TestWithParam<std::size_t> {};

// bop_alloc at the address-space limit: NULL + ENOMEM, no crash, recovers.
TEST_P(OomBySize, BopAllocReturnsNullThenRecovers) {
  std::size_t size = GetParam();
  ChildResult r = RunInChild([size] { return ExhaustBopAlloc(size); }, 120);
  EXPECT_TRUE(r.ok()) << "size " << size << ": " << r.describe();
}

// malloc at the address-space limit: NULL + ENOMEM, no crash, recovers.
TEST_P(OomBySize, MallocReturnsNullThenRecovers) {
  std::size_t size = GetParam();
  ChildResult r = RunInChild([size] { return ExhaustMalloc(size); }, 120);
  EXPECT_TRUE(r.ok()) << "size " << size << ": " << r.describe();
}

INSTANTIATE_TEST_SUITE_P(Sizes, OomBySize,
                         ::testing::Values(std::size_t{64}, std::size_t{4096}, std::size_t{100000},
                                           std::size_t{1} << 20, std::size_t{32} << 20),
                         [](const ::testing::TestParamInfo<std::size_t>& info) {
                           return "Size" + std::to_string(info.param);
                         });

}  // namespace

// operator new throws std::bad_alloc at the limit, the nothrow forms return
// nullptr, and after freeing new works again.
TEST(Oom, OperatorNewThrowsAndNothrowReturnsNull) {
  ChildResult r = RunInChild([] {
    delete[] new char[MiB];
    CHILD_CHECK(LimitAddressSpace());
    Chain c;
    bool threw = false;
    try {
      for (;;) {
        char* p = Keep(new char[MiB]);
        Push(c, p, MiB);
        CHILD_CHECK(c.bytes <= 8192 * MiB);
      }
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    CHILD_CHECK(threw);
    CHILD_CHECK(c.bytes >= 64 * MiB);
    CHILD_CHECK(Keep(new (std::nothrow) char[64 * MiB]) == nullptr);
    CHILD_CHECK(::operator new(64 * MiB, std::nothrow) == nullptr);
    CHILD_CHECK(::operator new (64 * MiB, std::align_val_t{4096}, std::nothrow) == nullptr);
    threw = false;
    try {
      Escape(::operator new[](64 * MiB, std::align_val_t{64}));
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    CHILD_CHECK(threw);
    FreeChain(c, [](void* p) { delete[] static_cast<char*>(p); });
    char* again = Keep(new char[MiB]);
    again[MiB - 1] = 1;
    delete[] again;
    return 0;
  });
  EXPECT_TRUE(r.ok()) << r.describe();
}

namespace {
void* g_reserve = nullptr;
int g_handler_calls = 0;
void FreeReserveHandler() {
  ++g_handler_calls;
  std::free(g_reserve);
  g_reserve = nullptr;
  std::set_new_handler(nullptr);
}
}  // namespace

// operator new calls the new_handler on failure and retries: a handler that
// frees a reserve makes the allocation succeed.
TEST(Oom, NewHandlerIsCalledAndRetried) {
  ChildResult r = RunInChild([] {
    CHILD_CHECK(LimitAddressSpace());
    g_reserve = std::malloc(32 * MiB);
    CHILD_CHECK(g_reserve != nullptr);
    Chain c;
    CHILD_CHECK(FillUntilNull(c, MiB, [](std::size_t n) { return std::malloc(n); }) == ENOMEM);
    std::set_new_handler(FreeReserveHandler);
    char* p = nullptr;
    try {
      p = Keep(new char[32 * MiB]);
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "operator new threw although the handler freed 32 MiB\n");
      return 1;
    }
    CHILD_CHECK(g_handler_calls == 1);
    p[32 * MiB - 1] = 1;
    delete[] p;
    FreeChain(c, [](void* q) { std::free(q); });
    return 0;
  });
  EXPECT_TRUE(r.ok()) << r.describe();
}

// Impossible sizes fail cleanly without any limit: NULL + ENOMEM from the C
// functions, bad_alloc from new, nullptr from nothrow new.
TEST(Oom, HugeRequestsFail) {
  for (std::size_t s : {kSizeMax, kSizeMax - 4096, kSizeMax / 2 + 1, std::size_t{1} << 48}) {
    s = Opaque(s);
    errno = 0;
    EXPECT_EQ(std::malloc(s), nullptr) << s;
    EXPECT_EQ(errno, ENOMEM) << s;
    errno = 0;
    EXPECT_EQ(std::calloc(1, s), nullptr) << s;
    EXPECT_EQ(errno, ENOMEM) << s;
    errno = 0;
    EXPECT_EQ(aligned_alloc(64, s & ~std::size_t{63}), nullptr) << s;
    EXPECT_EQ(errno, ENOMEM) << s;
    void* out = nullptr;
    EXPECT_EQ(posix_memalign(&out, 4096, s), ENOMEM) << s;
    errno = 0;
    EXPECT_EQ(bop_alloc(s), nullptr) << s;
    EXPECT_EQ(errno, ENOMEM) << s;
    void* keep = std::malloc(64);
    ASSERT_NE(keep, nullptr);
    std::memset(keep, 0x3C, 64);
    errno = 0;
    EXPECT_EQ(std::realloc(keep, s), nullptr) << s;
    EXPECT_EQ(errno, ENOMEM) << s;
    EXPECT_EQ(static_cast<unsigned char*>(keep)[63], 0x3C);
    std::free(keep);
    EXPECT_THROW(Escape(::operator new(s)), std::bad_alloc) << s;
    EXPECT_THROW(Escape(::operator new[](s)), std::bad_alloc) << s;
    EXPECT_THROW(Escape(::operator new (s, std::align_val_t{256})), std::bad_alloc) << s;
    EXPECT_EQ(::operator new(s, std::nothrow), nullptr) << s;
    EXPECT_EQ(::operator new[](s, std::nothrow), nullptr) << s;
    EXPECT_EQ(::operator new (s, std::align_val_t{256}, std::nothrow), nullptr) << s;
  }
}

// Under the cap, a single request bigger than what is left fails at once
// (the allocator does not crash trying to map it).
TEST(Oom, SingleRequestBeyondTheCap) {
  ChildResult r = RunInChild([] {
    CHILD_CHECK(LimitAddressSpace());
    for (std::size_t s : {kHeadroom + MiB, 2 * kHeadroom, 1024 * MiB}) {
      errno = 0;
      CHILD_CHECK(std::malloc(s) == nullptr && errno == ENOMEM);
      errno = 0;
      CHILD_CHECK(bop_zalloc(s) == nullptr && errno == ENOMEM);
      errno = 0;
      CHILD_CHECK(bop_alloc_aligned(MiB, s) == nullptr && errno == ENOMEM);
    }
    // What does fit still works.
    void* p = std::malloc(kHeadroom / 2);
    CHILD_CHECK(p != nullptr);
    std::memset(p, 1, 4096);
    std::free(p);
    return 0;
  });
  EXPECT_TRUE(r.ok()) << r.describe();
}
