#include "platform/fatal.hpp"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace bop {
namespace {

// Appends text to a fixed buffer; no allocation, no stdio.
struct LineBuffer {
  char data[256];
  std::size_t length = 0;
  void put(const char* s) {
    while (*s != '\0' && length < sizeof data - 1) data[length++] = *s++;
  }
  void put_hex(std::uintptr_t v) {
    put("0x");
    char digits[16];
    int n = 0;
    do {
      digits[n++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v != 0);
    while (n > 0 && length < sizeof data - 1) data[length++] = digits[--n];
  }
  void flush() {
    data[length++] = '\n';
    ssize_t ignored = ::write(STDERR_FILENO, data, length);
    (void)ignored;
  }
};

}  // namespace

void fatal(const char* what, const void* pointer) noexcept {
  LineBuffer line;
  line.put("bop: ");
  line.put(what);
  if (pointer != nullptr) {
    line.put(" (pointer ");
    line.put_hex(reinterpret_cast<std::uintptr_t>(pointer));
    line.put(")");
  }
  line.flush();
  std::abort();
}

void warn(const char* what) noexcept {
  LineBuffer line;
  line.put("bop: ");
  line.put(what);
  line.flush();
}

}  // namespace bop
