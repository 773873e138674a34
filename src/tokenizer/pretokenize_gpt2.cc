// GPT-2's pre-tokenizer and SmolLM's digit-isolating variant, hand-written as one scanner.
//
// kGpt2 is the pattern of OpenAI's GPT-2 encoder.py, which Hugging Face's ByteLevel pre-tokenizer
// (use_regex true) and llama.cpp's "gpt-2" type also use:
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// matched leftmost-first (the first alternative that matches at a position wins), each quantifier
// greedy, the next match starting where the last one ended. The alternatives cover every
// character (each is a letter, a number, whitespace or "other"), so the pieces tile the text. At a
// position holding character c, followed by d:
//   1. c is ' and the text goes on with s t re ve m ll d (case-sensitive, unlike Llama 3's
//   (?i:...):
//      "'S" is not a contraction): the contraction is a piece.
//   2-4. ` ?X+` with X one of \p{L}, \p{N}, [^\s\p{L}\p{N}]: if c is U+0020 and d is not
//      whitespace, the space joins the run of d's class; otherwise, if c is not whitespace, the run
//      of c's class. Runs are maximal and never need backtracking: the classes are disjoint, and
//      an apostrophe inside an "other" run stays there ("?'s" is "?'" + "s").
//   5-6. c is whitespace (and not a space that 2-4 took): let the whitespace run starting at c be
//      maximal, ending at e. `\s+(?!\S)` backtracks from e until the next character is not
//      non-whitespace, i.e. until it is whitespace or the end of the text:
//        - e is the end of the text: the whole run (5);
//        - else, the run has two or more characters: all but the last (5), which is whitespace; the
//          last one then starts the next match, usually joining the word after it by 2-4 when it
//          is a space ("a   b" is "a", "  ", " b");
//        - else (one character before a non-whitespace one): 5 fails even at length one, and
//          `\s+` takes the single character (6), e.g. "\n" in "a\nb" or the tab in "a \tb".
//
// kSmolLM (llama.cpp's "smollm"; Hugging Face's Sequence[Digits(individual_digits=true),
// ByteLevel(use_regex=true)] of SmolLM2's tokenizer.json) first makes every \p{N} character a piece
// of its own, then runs the GPT-2 pattern on each stretch between them. The pattern sees each
// stretch as a whole text, so a digit acts as the end of the text: a space before a digit does not
// join it (" 1" is " ", "1"), a whitespace run before a digit is one piece ("a  1" is "a", "  ",
// "1"), and ` ?\p{N}+` never matches. The scanner does both in one pass, treating a digit like the
// end of the text wherever the pattern looks ahead.
//
// Classes are those of unicode.h (Unicode 16.0). Hugging Face's Digits uses Rust's
// char::is_numeric, whose tables may be newer: code points that became \p{N} after Unicode 16.0
// (e.g. U+11DE0..U+11DE9 in 17.0) are "other" here.
#include "tokenizer/pretokenize.h"

namespace herd::internal {

namespace {

using namespace unicode;

// Length of 's 't 're 've 'm 'll 'd at text[i] == '\'' (case-sensitive), or 0. No alternative is a
// prefix of another, so their order does not matter.
size_t MatchGpt2Contraction(std::string_view text, size_t i) {
  if (i + 1 >= text.size()) return 0;
  const char next2 = i + 2 < text.size() ? text[i + 2] : '\0';
  switch (text[i + 1]) {
    case 's':
    case 't':
    case 'm':
    case 'd':
      return 2;
    case 'r':
    case 'v':
      return next2 == 'e' ? 3 : 0;
    case 'l':
      return next2 == 'l' ? 3 : 0;
    default:
      return 0;
  }
}

template <bool kIsolateDigits>
void Scan(std::string_view text, PieceFn fn, void* ctx) {
  const size_t n = text.size();
  constexpr uint8_t kWord = kLetter | kNumber | kSpace;
  // With isolated digits, a \p{N} character ends the stretch the pattern sees.
  auto ends_stretch = [](CharInfo c) { return kIsolateDigits && (c.cls & kNumber); };
  // End of the run from i of characters whose class satisfies in_run.
  auto skip = [&](size_t i, auto in_run) {
    while (i < n) {
      const CharInfo d = CharAt(text, i);
      if (!in_run(d.cls)) break;
      i += d.len;
    }
    return i;
  };
  size_t i = 0;
  while (i < n) {
    const size_t start = i;
    const CharInfo c = CharAt(text, i);
    if (ends_stretch(c)) {  // Digits(individual_digits): the digit alone
      i += c.len;
      fn(ctx, start, i);
      continue;
    }
    // 1. 's|'t|'re|'ve|'m|'ll|'d
    if (text[i] == '\'') {
      if (size_t m = MatchGpt2Contraction(text, i)) {
        i += m;
        fn(ctx, start, i);
        continue;
      }
    }
    // 2-4. ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: the run's class is that of its first
    // character after the optional space.
    size_t run = i;
    uint8_t cls = c.cls;
    if (text[i] == ' ' && i + 1 < n) {
      const CharInfo d = CharAt(text, i + 1);
      if (!(d.cls & kSpace) && !ends_stretch(d)) {
        run = i + 1;
        cls = d.cls;
      }
    }
    if (!(cls & kSpace)) {
      if (cls & kLetter) {
        i = skip(run, [](uint8_t k) { return (k & kLetter) != 0; });
      } else if (cls & kNumber) {  // not reached with isolated digits
        i = skip(run, [](uint8_t k) { return (k & kNumber) != 0; });
      } else {
        i = skip(run, [](uint8_t k) { return (k & kWord) == 0; });
      }
      fn(ctx, start, i);
      continue;
    }
    // 5-6. c is whitespace: the maximal run, then `\s+(?!\S)`'s backtracking (see the top).
    size_t end = i, last_start = i;
    while (end < n) {
      const CharInfo d = CharAt(text, end);
      if (!(d.cls & kSpace)) break;
      last_start = end;
      end += d.len;
    }
    const bool at_end = end == n || ends_stretch(CharAt(text, end));
    i = at_end || last_start == start ? end : last_start;
    fn(ctx, start, i);
  }
}

}  // namespace

void ScanGpt2(std::string_view text, bool isolate_digits, PieceFn fn, void* ctx) {
  if (isolate_digits) {
    Scan<true>(text, fn, ctx);
  } else {
    Scan<false>(text, fn, ctx);
  }
}

}  // namespace herd::internal
