#include "tokenizer/unicode.h"

#include <algorithm>
#include <map>
#include <vector>

namespace herd::unicode {

namespace {

#include "tokenizer/unicode_tables.inc"

template <size_t N>
void Mark(const uint32_t (&ranges)[N][2], uint8_t bit, std::vector<uint8_t>* cls) {
  for (const auto& r : ranges)
    for (uint32_t cp = r[0]; cp <= r[1]; ++cp) (*cls)[cp] |= bit;
}

struct Tables {
  std::vector<std::vector<uint8_t>> blocks;  // unique 256-entry blocks
  std::vector<const uint8_t*> stage1;        // 0x1100 entries
};

const Tables& GetTables() {
  static const Tables* tables = [] {
    // Flat class of every code point (surrogates stay 0: "other", category Cs), then deduplicated
    // into 256-entry blocks shared by stage1.
    std::vector<uint8_t> cls(0x110000, 0);
    Mark(kLetterRanges, kLetter, &cls);
    Mark(kNumberRanges, kNumber, &cls);
    Mark(kSpaceRanges, kSpace, &cls);
    cls['\r'] |= kNewline;
    cls['\n'] |= kNewline;
    cls[' '] |= kAsciiSpace;
    auto* t = new Tables();
    std::map<std::vector<uint8_t>, size_t> seen;
    t->blocks.reserve(0x1100);
    std::vector<size_t> index(0x1100);
    for (uint32_t hi = 0; hi < 0x1100; ++hi) {
      std::vector<uint8_t> block(cls.begin() + (hi << 8), cls.begin() + ((hi + 1) << 8));
      auto [it, fresh] = seen.emplace(block, t->blocks.size());
      if (fresh) t->blocks.push_back(std::move(block));
      index[hi] = it->second;
    }
    for (size_t k : index) t->stage1.push_back(t->blocks[k].data());
    return t;
  }();
  return *tables;
}

}  // namespace

namespace internal {
uint8_t g_ascii_class[128];
const uint8_t* const* BuildTables() {
  const Tables& t = GetTables();
  for (uint32_t c = 0; c < 128; ++c) g_ascii_class[c] = t.stage1[0][c];
  return t.stage1.data();
}
const uint8_t* const* g_stage1 = BuildTables();
}  // namespace internal

uint8_t ClassOf(uint32_t cp) {
  if (cp > 0x10FFFF) return 0;
  return internal::g_stage1[cp >> 8][cp & 0xFF];
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    size_t len = DecodeUtf8(s, i, &cp);
    if (len == 1 && static_cast<uint8_t>(s[i]) >= 0x80) return false;
    i += len;
  }
  return true;
}

size_t CompleteUtf8Prefix(std::string_view s) {
  // Look at the last (up to 3) bytes: if they are the start of a multi-byte sequence that is still
  // missing bytes but could become valid, hold them back.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const uint8_t b = static_cast<uint8_t>(s[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    if (b < 0xC2 || b > 0xF4 || need <= back) return n;  // ASCII, invalid lead, or complete
    // Candidate incomplete sequence s[n-back, n): it could still complete only if its bytes so far
    // are a valid prefix (second-byte ranges restrict E0, ED, F0, F4).
    if (back >= 2) {
      const uint8_t b1 = static_cast<uint8_t>(s[n - back + 1]);
      if ((b == 0xE0 && b1 < 0xA0) || (b == 0xED && b1 > 0x9F) || (b == 0xF0 && b1 < 0x90) ||
          (b == 0xF4 && b1 > 0x8F))
        return n;
    }
    return n - back;
  }
  return n;
}

}  // namespace herd::unicode
