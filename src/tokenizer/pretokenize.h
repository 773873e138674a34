// Pre-tokenizers: split text into pieces that BPE encodes independently.
//
// kLlama3 is Meta's pattern, hand-written as a scanner (no regex engine) with the same
// leftmost-first, greedy-with-backtracking semantics the regex has:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
// Bytes that are not valid UTF-8 are single characters of class "other" ([^\s\p{L}\p{N}]), which is
// what the regex sees when they are decoded with Python's errors="surrogateescape".
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace herd {

enum class PreTokenizer {
  kLlama3,  // GGUF pre "llama-bpe" / "llama3"
};

const char* PreTokenizerName(PreTokenizer p);

// Calls emit(begin, end) for each piece, in order; pieces cover the text exactly.
template <typename Emit>
void SplitLlama3(std::string_view text, Emit&& emit);

// Convenience form: appends [begin, end) byte offsets of every piece.
void PreTokenize(PreTokenizer type, std::string_view text,
                 std::vector<std::pair<uint32_t, uint32_t>>* pieces);

// ---- implementation ----

namespace internal {
// Length of a contraction ('s 't 're 've 'm 'll 'd, any case, incl. U+017F long s) at text[i] ==
// '\''.
size_t MatchContraction(std::string_view text, size_t i);
}  // namespace internal

}  // namespace herd

#include "tokenizer/unicode.h"

namespace herd {

template <typename Emit>
void SplitLlama3(std::string_view text, Emit&& emit) {
  using namespace unicode;
  const size_t n = text.size();
  auto at = [&](size_t i) -> CharInfo { return i < n ? CharAt(text, i) : CharInfo{0, 0}; };
  auto is_other = [](CharInfo c) {
    return c.len != 0 && (c.cls & (kLetter | kNumber | kSpace)) == 0;
  };
  // Skips characters while pred(class) holds; returns the end offset.
  auto skip = [&](size_t i, uint8_t mask) {
    while (i < n) {
      CharInfo c = CharAt(text, i);
      if (!(c.cls & mask)) break;
      i += c.len;
    }
    return i;
  };
  size_t i = 0;
  while (i < n) {
    const size_t start = i;
    const CharInfo c = CharAt(text, i);
    // 1. (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if (text[i] == '\'') {
      if (size_t m = herd::internal::MatchContraction(text, i)) {
        emit(start, start + m);
        i += m;
        continue;
      }
    }
    // 2. [^\r\n\p{L}\p{N}]?\p{L}+
    if (c.cls & kLetter) {
      i = skip(i + c.len, kLetter);
      emit(start, i);
      continue;
    }
    if (!(c.cls & (kNewline | kNumber))) {
      const CharInfo d = at(i + c.len);
      if (d.cls & kLetter) {
        i = skip(i + c.len + d.len, kLetter);
        emit(start, i);
        continue;
      }
    }
    // 3. \p{N}{1,3}
    if (c.cls & kNumber) {
      i += c.len;
      for (int k = 1; k < 3 && i < n; ++k) {
        const CharInfo d = CharAt(text, i);
        if (!(d.cls & kNumber)) break;
        i += d.len;
      }
      emit(start, i);
      continue;
    }
    // 4. ` ?[^\s\p{L}\p{N}]+[\r\n]*`
    {
      size_t j = i;
      if ((c.cls & kAsciiSpace) && is_other(at(i + 1))) j = i + 1;
      if (j > i || is_other(c)) {
        while (j < n) {
          const CharInfo d = CharAt(text, j);
          if (d.cls & (kLetter | kNumber | kSpace)) break;
          j += d.len;
        }
        while (j < n && (text[j] == '\r' || text[j] == '\n')) ++j;
        emit(start, j);
        i = j;
        continue;
      }
    }
    // c is whitespace. Scan the run, remembering where the last newline ends and where the last
    // character starts (for the backtracking of 5 and 6).
    size_t end = i, after_newline = 0, last_start = i;
    while (end < n) {
      const CharInfo d = CharAt(text, end);
      if (!(d.cls & kSpace)) break;
      last_start = end;
      end += d.len;
      if (d.cls & kNewline) after_newline = end;
    }
    if (after_newline) {
      i = after_newline;  // 5. \s*[\r\n]+
    } else if (end == n || last_start == start) {
      i = end;  // 6. \s+(?!\S) at the end of text, or 7. \s+ for a single whitespace char
    } else {
      i = last_start;  // 6. \s+(?!\S): leave the last whitespace char to join the next piece
    }
    emit(start, i);
  }
}

}  // namespace herd
