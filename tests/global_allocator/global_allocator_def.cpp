// The one translation unit that installs the program's global allocator.
#include <bop/global.hpp>

#include <string>

#include "counting_allocator.hpp"

// constinit: constant-initialized, so usable by static constructors that run
// before this file's dynamic initialization.
static constinit CountingAllocator GLOBAL;
BOP_GLOBAL_ALLOCATOR(GLOBAL);

CountingAllocator& Counting() {
  return GLOBAL;
}

namespace {
// A static object whose constructor allocates: new must already work.
struct AllocatesBeforeMain {
  std::string text;
  long seen;
  AllocatesBeforeMain() : text(200, 's'), seen(GLOBAL.allocs.load()) {}
};
AllocatesBeforeMain g_before_main;
}  // namespace

long AllocsSeenByStaticInit() {
  return g_before_main.seen;
}
