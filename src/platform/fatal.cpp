#include "platform/fatal.hpp"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>

#include "platform/text_writer.hpp"

namespace bop {

void fatal(const char* what, const void* pointer) noexcept {
  {
    TextWriter line(STDERR_FILENO);
    line.put("bop: ").put(what);
    if (pointer != nullptr)
      line.put(" (pointer ").put_hex(reinterpret_cast<std::uintptr_t>(pointer)).put(")");
    line.put_char('\n');
  }
  std::abort();
}

}  // namespace bop
