// UTF-8 decoding and the character classes the pre-tokenizers need (\p{L}, \p{N}, \s). The classes
// come from unicode_tables.inc, generated from tiktoken's own regex engine (Unicode 16.0) by
// tools/gen_unicode_tables.py, and are flattened once into a two-stage lookup table so the
// splitter's hot loop is a few loads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace herd::unicode {

// Class bits of one character. "Other" (punctuation, symbols, marks, controls, unassigned, and
// bytes that are not valid UTF-8) has none of kLetter / kNumber / kSpace.
enum CharClass : uint8_t {
  kLetter = 1,       // \p{L}
  kNumber = 2,       // \p{N}
  kSpace = 4,        // \s: the Unicode White_Space property
  kNewline = 8,      // \r or \n (also kSpace)
  kAsciiSpace = 16,  // U+0020 exactly
  kInvalid = 32,     // one byte that does not start a valid UTF-8 sequence (class "other")
};

// Decodes one UTF-8 character at s[i] (i < s.size()). Returns its byte length (1..4) and sets *cp.
// A byte that does not begin a well-formed sequence (stray continuation, overlong form, surrogate,
// > U+10FFFF, truncated) decodes as a single invalid byte: length 1, *cp = 0xDC00 + byte (Python's
// surrogateescape).
inline size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp);

// Class bits for a code point (0 .. 0x10FFFF).
uint8_t ClassOf(uint32_t cp);

// Class bits and byte length of the character at s[i].
struct CharInfo {
  uint8_t cls;
  uint8_t len;
};
inline CharInfo CharAt(std::string_view s, size_t i);

// True iff s is well-formed UTF-8.
bool IsValidUtf8(std::string_view s);
// Length of the longest prefix of s that ends on a character boundary of complete, valid
// characters, treating a trailing truncated-but-possibly-valid sequence as incomplete (for
// streaming decode).
size_t CompleteUtf8Prefix(std::string_view s);

// ---- inline definitions ----

inline size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + i;
  const size_t avail = s.size() - i;
  const uint8_t b0 = p[0];
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  auto cont = [&](size_t k) { return k < avail && (p[k] & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (cont(1)) {
      *cp = (uint32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F);
      return 2;
    }
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (cont(1) && cont(2)) {
      uint32_t c = (uint32_t(b0 & 0x0F) << 12) | (uint32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
      if (c >= 0x800 && (c < 0xD800 || c > 0xDFFF)) {
        *cp = c;
        return 3;
      }
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (cont(1) && cont(2) && cont(3)) {
      uint32_t c = (uint32_t(b0 & 0x07) << 18) | (uint32_t(p[1] & 0x3F) << 12) |
                   (uint32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
      if (c >= 0x10000 && c <= 0x10FFFF) {
        *cp = c;
        return 4;
      }
    }
  }
  *cp = 0xDC00 + b0;
  return 1;
}

namespace internal {
// Filled before main() (static initialisation of unicode.cc); not for use by other static
// initialisers.
extern const uint8_t* const* g_stage1;  // [0x1100] pointers to 256-entry class blocks
extern uint8_t g_ascii_class[128];      // copy of block 0's first half, for the ASCII fast path
const uint8_t* const* BuildTables();
}  // namespace internal

inline CharInfo CharAt(std::string_view s, size_t i) {
  const uint8_t b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) return {internal::g_ascii_class[b0], 1};
  uint32_t cp;
  const size_t len = DecodeUtf8(s, i, &cp);
  if (len == 1) return {kInvalid, 1};
  return {internal::g_stage1[cp >> 8][cp & 0xFF], static_cast<uint8_t>(len)};
}

}  // namespace herd::unicode
