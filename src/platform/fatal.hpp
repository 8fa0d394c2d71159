// Fatal errors and diagnostics that never allocate (write(2) only).
#pragma once

namespace bop {

// Prints "bop: <what> (pointer 0x...)" on one line to stderr, then aborts.
[[noreturn]] void fatal(const char* what, const void* pointer = nullptr) noexcept;

}  // namespace bop
