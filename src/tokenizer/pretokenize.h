// Pre-tokenizers: split text into pieces that BPE encodes independently.
//
// kLlama3 is Meta's pattern, hand-written as a scanner (no regex engine) with the same
// leftmost-first, greedy-with-backtracking semantics the regex has:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//   \s*[\r\n]+|\s+(?!\S)|\s+
// kGpt2 is GPT-2's pattern (also Hugging Face's ByteLevel pre-tokenizer with use_regex):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// kSmolLM isolates every \p{N} character first, then splits the text between them with kGpt2's
// pattern. Both are scanned in pretokenize_gpt2.cc, which spells out their semantics.
// Bytes that are not valid UTF-8 are single characters of class "other" ([^\s\p{L}\p{N}]), which is
// what the regex sees when they are decoded with Python's errors="surrogateescape".
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <type_traits>
#include <vector>

namespace herd {

enum class PreTokenizer {
  kLlama3,  // GGUF pre "llama-bpe" / "llama3" / "llama-v3"
  kGpt2,    // GGUF pre "gpt-2" (llama.cpp's name) / "gpt2"; HF: ByteLevel with use_regex
  kSmolLM,  // GGUF pre "smollm"; HF: Sequence[Digits(individual_digits), ByteLevel(use_regex)]
};

// The name llama.cpp gives the pre-tokenizer in GGUF files (tokenizer.ggml.pre).
const char* PreTokenizerName(PreTokenizer p);

// Calls emit(begin, end) for each piece, in order; pieces cover the text exactly.
template <typename Emit>
void SplitLlama3(std::string_view text, Emit&& emit);
template <typename Emit>
void SplitGpt2(std::string_view text, Emit&& emit);
template <typename Emit>
void SplitSmolLM(std::string_view text, Emit&& emit);
// The splitter of `type`.
template <typename Emit>
void Split(PreTokenizer type, std::string_view text, Emit&& emit);

// Convenience form: appends [begin, end) byte offsets of every piece.
void PreTokenize(PreTokenizer type, std::string_view text,
                 std::vector<std::pair<uint32_t, uint32_t>>* pieces);

// ---- implementation ----

namespace internal {
// Length of a contraction ('s 't 're 've 'm 'll 'd, any case, incl. U+017F long s) at text[i] ==
// '\''.
size_t MatchContraction(std::string_view text, size_t i);

// The GPT-2 scanner (pretokenize_gpt2.cc) calls fn(ctx, begin, end) for each piece; with
// isolate_digits, SmolLM's variant.
using PieceFn = void (*)(void* ctx, size_t begin, size_t end);
void ScanGpt2(std::string_view text, bool isolate_digits, PieceFn fn, void* ctx);

template <typename Emit>
void ScanGpt2With(std::string_view text, bool isolate_digits, Emit& emit) {
  using E = std::remove_reference_t<Emit>;
  ScanGpt2(
      text, isolate_digits, [](void* ctx, size_t b, size_t e) { (*static_cast<E*>(ctx))(b, e); },
      const_cast<void*>(static_cast<const void*>(std::addressof(emit))));
}
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

template <typename Emit>
void SplitGpt2(std::string_view text, Emit&& emit) {
  internal::ScanGpt2With(text, /*isolate_digits=*/false, emit);
}

template <typename Emit>
void SplitSmolLM(std::string_view text, Emit&& emit) {
  internal::ScanGpt2With(text, /*isolate_digits=*/true, emit);
}

template <typename Emit>
void Split(PreTokenizer type, std::string_view text, Emit&& emit) {
  switch (type) {
    case PreTokenizer::kLlama3:
      SplitLlama3(text, emit);
      return;
    case PreTokenizer::kGpt2:
      SplitGpt2(text, emit);
      return;
    case PreTokenizer::kSmolLM:
      SplitSmolLM(text, emit);
      return;
  }
}

}  // namespace herd
