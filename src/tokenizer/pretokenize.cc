#include "tokenizer/pretokenize.h"

namespace herd {

const char* PreTokenizerName(PreTokenizer p) {
  switch (p) {
    case PreTokenizer::kLlama3:
      return "llama-bpe";
    case PreTokenizer::kGpt2:
      return "gpt-2";
    case PreTokenizer::kSmolLM:
      return "smollm";
  }
  return "?";
}

namespace internal {

namespace {
// Matches one letter of a contraction case-insensitively under Unicode simple case folding: the
// only non-ASCII letters that fold to one of s t r e v m l d are U+017F LATIN SMALL LETTER LONG S
// (to s).
size_t MatchFolded(std::string_view text, size_t i, char lower) {
  if (i >= text.size()) return 0;
  const char ch = text[i];
  if (ch == lower || ch == lower - 32) return 1;
  if (lower == 's' && i + 1 < text.size() && static_cast<uint8_t>(ch) == 0xC5 &&
      static_cast<uint8_t>(text[i + 1]) == 0xBF)
    return 2;
  return 0;
}
}  // namespace

size_t MatchContraction(std::string_view text, size_t i) {
  // Alternatives in the pattern's order; none is a prefix of a later one, so order does not matter.
  static constexpr const char* kSuffixes[] = {"s", "t", "re", "ve", "m", "ll", "d"};
  for (const char* suffix : kSuffixes) {
    size_t j = i + 1;
    bool ok = true;
    for (const char* p = suffix; *p; ++p) {
      size_t m = MatchFolded(text, j, *p);
      if (!m) {
        ok = false;
        break;
      }
      j += m;
    }
    if (ok) return j - i;
  }
  return 0;
}

}  // namespace internal

void PreTokenize(PreTokenizer type, std::string_view text,
                 std::vector<std::pair<uint32_t, uint32_t>>* pieces) {
  Split(type, text, [&](size_t b, size_t e) {
    pieces->emplace_back(static_cast<uint32_t>(b), static_cast<uint32_t>(e));
  });
}

}  // namespace herd
