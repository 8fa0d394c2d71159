// Formats text into a fixed buffer and writes it with write(2): usable where
// stdio is not (inside the allocator, at exit, in a fatal error path).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>

namespace bop {

class TextWriter {
 public:
  explicit TextWriter(int fd) noexcept : fd_(fd) {}
  ~TextWriter() { flush(); }
  TextWriter(const TextWriter&) = delete;
  TextWriter& operator=(const TextWriter&) = delete;

  TextWriter& put(const char* s) noexcept {
    while (*s != '\0') put_char(*s++);
    return *this;
  }
  TextWriter& put_char(char c) noexcept {
    if (length_ == sizeof buffer_) flush();
    buffer_[length_++] = c;
    return *this;
  }
  // Decimal, right-aligned in `width` columns (0: no padding).
  TextWriter& put_u64(std::uint64_t v, unsigned width = 0) noexcept {
    char digits[24];
    unsigned n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    for (unsigned i = n; i < width; ++i) put_char(' ');
    while (n > 0) put_char(digits[--n]);
    return *this;
  }
  TextWriter& put_hex(std::uintptr_t v) noexcept {
    char digits[16];
    unsigned n = 0;
    do {
      digits[n++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v != 0);
    put("0x");
    while (n > 0) put_char(digits[--n]);
    return *this;
  }
  // Bytes in human units: "512 B", "1.5 KiB", "20.0 MiB", ... (one decimal,
  // rounded to nearest), right-aligned in `width` columns.
  TextWriter& put_bytes(std::uint64_t v, unsigned width = 0) noexcept {
    char text[32];
    unsigned n = format_bytes(v, text);
    for (unsigned i = n; i < width; ++i) put_char(' ');
    return put(text);
  }
  static unsigned format_bytes(std::uint64_t v, char (&out)[32]) noexcept {
    static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    unsigned unit = 0;
    std::uint64_t whole = v, tenths = 0;
    if (v >= 1024) {
      while (unit + 1 < 7 && (v >> (10 * (unit + 1))) >= 1024) ++unit;
      ++unit;
      unsigned shift = 10 * unit;
      whole = v >> shift;
      std::uint64_t rest = (v - (whole << shift)) >> (shift - 10);  // 0..1023
      tenths = (rest * 10 + 512) / 1024;
      if (tenths == 10) ++whole, tenths = 0;
    }
    char digits[24];
    unsigned d = 0, n = 0;
    do digits[d++] = static_cast<char>('0' + whole % 10);
    while ((whole /= 10) != 0);
    while (d > 0) out[n++] = digits[--d];
    if (unit != 0) out[n++] = '.', out[n++] = static_cast<char>('0' + tenths);
    out[n++] = ' ';
    for (const char* u = kUnits[unit]; *u != '\0'; ++u) out[n++] = *u;
    out[n] = '\0';
    return n;
  }
  // A string as a JSON string literal (quotes and escapes).
  TextWriter& put_json_string(const char* s) noexcept {
    put_char('"');
    for (; *s != '\0'; ++s) {
      unsigned char c = static_cast<unsigned char>(*s);
      if (c == '"' || c == '\\') {
        put_char('\\');
        put_char(static_cast<char>(c));
      } else if (c < 0x20) {
        put("\\u00");
        put_char("0123456789abcdef"[c >> 4]);
        put_char("0123456789abcdef"[c & 15]);
      } else {
        put_char(static_cast<char>(c));
      }
    }
    return put_char('"');
  }
  void flush() noexcept {
    std::size_t done = 0;
    while (done < length_) {
      ssize_t n = ::write(fd_, buffer_ + done, length_ - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    length_ = 0;
  }

 private:
  int fd_;
  std::size_t length_ = 0;
  char buffer_[2048];
};

}  // namespace bop
