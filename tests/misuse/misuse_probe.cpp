// misuse_probe KIND: commits one kind of heap misuse, then keeps using the
// heap for a while so the allocator has its chances to notice.  It calls only
// the standard malloc family and operator new/delete (no bop header), so the
// same binary runs under any allocator through LD_PRELOAD.
//
// Outcome, read by run_misuse.sh:
//   killed by a signal  the misuse was detected (by a check or by a crash)
//   exit 3              contained: a read saw no stale or foreign data
//                       (reads after free, of uninitialised memory, string
//                       runs past a block)
//   exit 0              the misuse went unnoticed
//   exit 2              usage error
// `misuse_probe --list` prints every kind, one a line.
#include <malloc.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

extern "C" void free_sized(void*, size_t) __attribute__((weak));
extern "C" void free_aligned_sized(void*, size_t, size_t) __attribute__((weak));

namespace {

constexpr int kContained = 3;
constexpr std::size_t kSmall = 24;      // a small block (bop: 32-byte class; glibc: 32-byte chunk)
constexpr std::size_t kMedium = 20000;  // above every small size class, below mmap thresholds
constexpr std::size_t kLarge = 100000;  // a large heap block (not a separate mapping in glibc)
constexpr std::size_t kHuge = 8 << 20;  // its own mapping everywhere

// Keeps the compiler from reasoning about a pointer or dropping a store.
template <class T>
T* opaque(T* p) {
  asm volatile("" : "+r"(p) : : "memory");
  return p;
}

// Allocates and frees blocks of `size` so that a freed (or corrupted) block
// is handed out again and the allocator walks its free lists.
void churn(std::size_t size, int rounds = 2000) {
  void* keep[64];
  for (int r = 0; r < rounds / 64; ++r) {
    for (auto& p : keep) {
      p = opaque(std::malloc(size));
      if (p != nullptr) std::memset(p, 0x5A, size < 64 ? size : 64);
    }
    for (auto& p : keep) std::free(p);
  }
}

// Frees of a pointer once freed, immediately or with other frees in between.
int double_free(std::size_t size, bool delayed) {
  void* p = opaque(std::malloc(size));
  void* others[8];
  for (auto& q : others) q = opaque(std::malloc(size));
  std::free(p);
  if (delayed)
    for (auto& q : others) std::free(q);
  std::free(opaque(p));
  if (!delayed)
    for (auto& q : others) std::free(q);
  churn(size);
  return 0;
}

int free_interior(std::size_t size, std::size_t offset) {
  char* p = opaque(static_cast<char*>(std::malloc(size)));
  std::memset(p, 0, size);
  std::free(opaque(p + offset));
  churn(size);
  return 0;
}

// Memory that no allocator handed out: a 16 MiB private mapping (so the
// pointer's surroundings are readable and hold zeros), 4 MiB in.
char* foreign_pointer() {
  void* m = mmap(nullptr, 16 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) std::exit(2);
  return static_cast<char*>(m) + (4 << 20) + 64;
}

char g_static_block[256];

int free_of(void* p) {
  std::free(opaque(p));
  churn(kSmall);
  return 0;
}

int usable_size_of(void* p) {
  std::size_t n = malloc_usable_size(opaque(p));
  std::printf("usable=%zu\n", n);
  return 0;
}

int realloc_of(void* p) {
  void* q = opaque(std::realloc(opaque(p), 4000));
  if (q != nullptr) std::memset(q, 0x11, 4000);
  churn(kSmall);
  return 0;
}

// Writes `n` bytes just past a block of `size` bytes, then frees it.
int overflow(std::size_t size, std::size_t n) {
  char* p = opaque(static_cast<char*>(std::malloc(size)));
  char* neighbour = opaque(static_cast<char*>(std::malloc(size)));
  std::memset(p, 'a', size);
  std::memset(opaque(p + size), 'X', n);
  std::free(p);
  std::free(neighbour);
  churn(size);
  return 0;
}

// A string that fills its block (no terminator inside it) is read with
// strlen: contained when the read stops right at the end of the block.
int unterminated_string() {
  constexpr int kBlocks = 64;
  char* blocks[kBlocks];
  for (auto& b : blocks) {
    b = opaque(static_cast<char*>(std::malloc(kSmall)));
    std::memset(b, 'S', kSmall);
  }
  bool ran_on = false;
  for (auto& b : blocks) ran_on |= std::strlen(opaque(b)) != kSmall;
  for (auto& b : blocks) std::free(b);
  return ran_on ? 0 : kContained;
}

int write_after_free(std::size_t size) {
  char* p = opaque(static_cast<char*>(std::malloc(size)));
  std::memset(p, 'a', size);
  std::free(p);
  std::memset(opaque(p) + 16, 'W', 16);  // past the words allocators keep links in
  churn(size);
  return 0;
}

int read_after_free() {
  char* p = opaque(static_cast<char*>(std::malloc(64)));
  std::memset(p, 'R', 64);
  std::free(p);
  const char* q = opaque(p);
  bool stale = false;
  for (int i = 16; i < 64; ++i) stale |= q[i] == 'R';
  return stale ? 0 : kContained;
}

// A block handed out again holds the previous owner's data.
int read_uninitialised() {
  char* p = opaque(static_cast<char*>(std::malloc(64)));
  std::memset(p, 'U', 64);
  std::free(p);
  bool stale = false;
  for (int i = 0; i < 16 && !stale; ++i) {
    const char* q = opaque(static_cast<char*>(std::malloc(64)));
    for (int j = 16; j < 64; ++j) stale |= q[j] == 'U';
  }
  return stale ? 0 : kContained;
}

int zero_size(bool write) {
  char* p = opaque(static_cast<char*>(std::malloc(0)));
  if (p == nullptr) return 0;
  if (write) {
    std::memset(p, 'Z', 8);
    std::free(p);
    churn(8);
  } else {
    volatile char c = *opaque(p);
    (void)c;
  }
  return 0;
}

struct Wide {
  char bytes[32];
};

// `new char` released as if it were a 32-byte object (sized delete).
int delete_wrong_type() {
  char* c = opaque(new char('c'));
  ::operator delete(opaque(c), sizeof(Wide));
  churn(32);
  return 0;
}

int aligned_delete(std::size_t size, std::size_t align) {
  void* p = opaque(::operator new(100, std::align_val_t(64)));
  ::operator delete(p, size, std::align_val_t(align));
  churn(128);
  return 0;
}

int free_sized_wrong() {
  if (free_sized == nullptr) return 0;  // the allocator has no free_sized: nothing to check
  void* p = opaque(std::malloc(100));
  free_sized(p, 4000);
  churn(100);
  return 0;
}

struct Kind {
  const char* name;
  int (*run)();
};

const Kind kKinds[] = {
    {"double_free_small", [] { return double_free(kSmall, false); }},
    {"double_free_medium", [] { return double_free(kMedium, false); }},
    {"double_free_huge", [] { return double_free(kHuge, false); }},
    {"delayed_double_free_small", [] { return double_free(kSmall, true); }},
    {"delayed_double_free_medium", [] { return double_free(kMedium, true); }},
    {"delayed_double_free_huge", [] { return double_free(kHuge, true); }},
    {"free_interior_small", [] { return free_interior(64, 16); }},
    {"free_interior_medium", [] { return free_interior(kLarge, 4096); }},
    {"free_interior_huge", [] { return free_interior(kHuge, 8192); }},
    {"free_unaligned", [] { return free_interior(kSmall, 1); }},
    {"free_stack",
     [] {
       char buf[64] = {};
       return free_of(opaque(buf) + 16);
     }},
    {"free_static", [] { return free_of(g_static_block + 16); }},
    {"free_foreign", [] { return free_of(foreign_pointer()); }},
    {"usable_size_interior",
     [] {
       char* p = opaque(static_cast<char*>(std::malloc(64)));
       return usable_size_of(p + 16);
     }},
    {"usable_size_unaligned",
     [] {
       char* p = opaque(static_cast<char*>(std::malloc(64)));
       return usable_size_of(p + 3);
     }},
    {"usable_size_foreign", [] { return usable_size_of(foreign_pointer()); }},
    {"realloc_interior",
     [] {
       char* p = opaque(static_cast<char*>(std::malloc(64)));
       return realloc_of(p + 16);
     }},
    {"realloc_foreign", [] { return realloc_of(foreign_pointer()); }},
    {"realloc_after_free",
     [] {
       void* p = opaque(std::malloc(64));
       std::free(p);
       return realloc_of(p);
     }},
    {"overflow_1_small", [] { return overflow(kSmall, 1); }},
    {"overflow_8_small", [] { return overflow(kSmall, 8); }},
    {"overflow_1_large", [] { return overflow(kLarge, 1); }},
    {"overflow_8_large", [] { return overflow(kLarge, 8); }},
    {"unterminated_string", unterminated_string},
    {"write_after_free_small", [] { return write_after_free(64); }},
    {"write_after_free_large", [] { return write_after_free(kLarge); }},
    {"read_after_free", read_after_free},
    {"read_zero_size", [] { return zero_size(false); }},
    {"write_zero_size", [] { return zero_size(true); }},
    {"delete_wrong_type_size", delete_wrong_type},
    {"aligned_delete_wrong_size", [] { return aligned_delete(3000, 64); }},
    {"aligned_delete_wrong_alignment", [] { return aligned_delete(100, 4096); }},
    {"free_sized_wrong_size", free_sized_wrong},
    {"read_uninitialised", read_uninitialised},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s KIND | --list\n", argv[0]);
    return 2;
  }
  for (const Kind& k : kKinds) {
    if (std::strcmp(argv[1], "--list") == 0) {
      std::puts(k.name);
    } else if (std::strcmp(argv[1], k.name) == 0) {
      int rc = k.run();
      std::puts(rc == kContained ? "contained" : "survived");
      return rc;
    }
  }
  if (std::strcmp(argv[1], "--list") == 0) return 0;
  std::fprintf(stderr, "unknown kind %s\n", argv[1]);
  return 2;
}
