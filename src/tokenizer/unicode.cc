#include "tokenizer/unicode.h"

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

namespace herd::unicode {

namespace {

#include "tokenizer/unicode_tables.inc"

template <size_t N>
bool InRanges(const uint32_t (&ranges)[N][2], uint32_t cp) {
  auto it = std::upper_bound(std::begin(ranges), std::end(ranges), cp,
                             [](uint32_t c, const uint32_t(&r)[2]) { return c < r[0]; });
  return it != std::begin(ranges) && cp <= (*(it - 1))[1];
}

uint8_t ComputeClass(uint32_t cp) {
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;  // surrogates: "other" (category Cs)
  uint8_t cls = 0;
  if (InRanges(kLetterRanges, cp)) cls |= kLetter;
  if (InRanges(kNumberRanges, cp)) cls |= kNumber;
  if (InRanges(kSpaceRanges, cp)) cls |= kSpace;
  if (cp == '\r' || cp == '\n') cls |= kNewline;
  if (cp == ' ') cls |= kAsciiSpace;
  return cls;
}

struct Tables {
  std::vector<std::unique_ptr<uint8_t[]>> blocks;  // unique 256-entry blocks
  std::vector<const uint8_t*> stage1;              // 0x1100 entries
};

const Tables& GetTables() {
  static const Tables* tables = [] {
    auto* t = new Tables();
    std::map<std::vector<uint8_t>, const uint8_t*> seen;
    t->stage1.resize(0x1100);
    std::vector<uint8_t> block(256);
    for (uint32_t hi = 0; hi < 0x1100; ++hi) {
      for (uint32_t lo = 0; lo < 256; ++lo) block[lo] = ComputeClass((hi << 8) | lo);
      auto it = seen.find(block);
      if (it == seen.end()) {
        auto owned = std::make_unique<uint8_t[]>(256);
        std::copy(block.begin(), block.end(), owned.get());
        it = seen.emplace(block, owned.get()).first;
        t->blocks.push_back(std::move(owned));
      }
      t->stage1[hi] = it->second;
    }
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
