// preload_probe: an ordinary program (not linked with bop) that checks, from
// the inside, that LD_PRELOAD=libbop.so replaced its allocator.
// Exit codes: 0 = served by bop, 2 = bop not loaded, 1 = a check failed.
#include <dlfcn.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <vector>

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "preload_probe:%d: check failed: %s\n", __LINE__, #cond); \
      return 1;                                                                      \
    }                                                                                \
  } while (0)

namespace {

using UsableFn = std::size_t (*)(const void*);
UsableFn g_bop_usable = nullptr;

void Escape(const void* p) {
  asm volatile("" : : "g"(p) : "memory");
}

// Name of the object file holding `addr`.
std::string ObjectOf(const void* addr) {
  Dl_info info{};
  if (dladdr(addr, &info) == 0 || info.dli_fname == nullptr) return "?";
  return info.dli_fname;
}

// `p` is a live bop block of at least `size` bytes.
bool IsBopBlock(const void* p, std::size_t size) {
  return p != nullptr && g_bop_usable(p) >= size &&
         malloc_usable_size(const_cast<void*>(p)) == g_bop_usable(p);
}

struct alignas(512) Aligned512 {
  char c[512];
};

}  // namespace

int main() {
  g_bop_usable = reinterpret_cast<UsableFn>(dlsym(RTLD_DEFAULT, "bop_malloc_usable_size"));
  if (g_bop_usable == nullptr) {
    std::fprintf(stderr, "preload_probe: bop_malloc_usable_size not found: bop is not loaded\n");
    return 2;
  }
  std::string bop_lib = ObjectOf(reinterpret_cast<const void*>(g_bop_usable));
  CHECK(bop_lib.find("libbop") != std::string::npos);

  // Every replaceable symbol resolves into libbop.so.
  const char* names[] = {"malloc",
                         "free",
                         "calloc",
                         "realloc",
                         "reallocarray",
                         "posix_memalign",
                         "aligned_alloc",
                         "memalign",
                         "valloc",
                         "pvalloc",
                         "malloc_usable_size",
                         "free_sized",
                         "free_aligned_sized",
                         "_Znwm",
                         "_Znam",
                         "_ZnwmRKSt9nothrow_t",
                         "_ZnwmSt11align_val_t",
                         "_ZnamSt11align_val_t",
                         "_ZnwmSt11align_val_tRKSt9nothrow_t",
                         "_ZdlPv",
                         "_ZdaPv",
                         "_ZdlPvm",
                         "_ZdaPvm",
                         "_ZdlPvSt11align_val_t",
                         "_ZdlPvmSt11align_val_t",
                         "_ZdaPvmSt11align_val_t",
                         "_ZdlPvRKSt9nothrow_t"};
  for (const char* name : names) {
    void* sym = dlsym(RTLD_DEFAULT, name);
    if (sym == nullptr || ObjectOf(sym) != bop_lib) {
      std::fprintf(stderr, "preload_probe: %s resolves to %s, not %s\n", name,
                   sym ? ObjectOf(sym).c_str() : "(nothing)", bop_lib.c_str());
      return 1;
    }
  }

  // This program's own calls land in bop.
  for (std::size_t s : {1, 100, 5000, 100000, 3 << 20}) {
    void* p = std::malloc(s);
    CHECK(IsBopBlock(p, s));
    std::memset(p, 0xAB, s);
    p = std::realloc(p, 2 * s);
    CHECK(IsBopBlock(p, 2 * s));
    std::free(p);
    void* c = std::calloc(s, 2);
    CHECK(IsBopBlock(c, 2 * s));
    std::free(c);
  }
  char* dup = strdup("libc allocates through bop");
  CHECK(IsBopBlock(dup, 27));
  std::free(dup);
  auto* n = new int[1000];
  Escape(n);
  CHECK(IsBopBlock(n, 4000));
  delete[] n;
  auto* a = new Aligned512;
  Escape(a);
  CHECK(IsBopBlock(a, 512) && reinterpret_cast<std::uintptr_t>(a) % 512 == 0);
  delete a;
  std::string str(10000, 's');
  CHECK(IsBopBlock(str.data(), 10001));
  void* pm = nullptr;
  CHECK(posix_memalign(&pm, 4096, 100) == 0 && IsBopBlock(pm, 100));
  std::free(pm);

  // Threads with cross-thread frees, then a fork whose child allocates.
  std::atomic<int> errors{0};
  std::vector<void*> handoff(10000);
  std::thread producer([&] {
    for (std::size_t i = 0; i < handoff.size(); ++i) {
      handoff[i] = std::malloc(i % 500 + 1);
      if (!IsBopBlock(handoff[i], i % 500 + 1)) errors++;
    }
  });
  producer.join();
  std::thread consumer([&] {
    for (void* p : handoff) std::free(p);
  });
  consumer.join();
  CHECK(errors.load() == 0);
  std::fflush(nullptr);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    std::vector<std::string> v;
    for (int i = 0; i < 10000; ++i) v.emplace_back(static_cast<std::size_t>(i % 100), 'c');
    void* p = std::malloc(1 << 20);
    _exit(IsBopBlock(p, 1 << 20) && v[99].size() == 99 ? 0 : 1);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::printf("preload_probe: allocator is bop (%s)\n", bop_lib.c_str());
  return 0;
}
