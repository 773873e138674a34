// GPT-2's byte-level alphabet, used by tokenizer.json vocabularies and GGUF tokenizer.ggml.tokens:
// printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for themselves as code points; the other
// 68 bytes, in increasing order, map to U+0100, U+0101, ... so every token is printable text.
#include <array>

#include "tokenizer/load.h"
#include "tokenizer/unicode.h"

namespace herd {

namespace {

struct Alphabet {
  std::array<uint32_t, 256> byte_to_cp;
  std::array<int16_t, 0x144> cp_to_byte;  // code points < 0x144 only
};

const Alphabet& GetAlphabet() {
  static const Alphabet a = [] {
    Alphabet t{};
    t.cp_to_byte.fill(-1);
    uint32_t extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      t.byte_to_cp[b] = printable ? b : 0x100 + extra++;
      t.cp_to_byte[t.byte_to_cp[b]] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return a;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

std::string ByteToUnicode(std::string_view bytes) {
  const Alphabet& a = GetAlphabet();
  std::string out;
  for (char c : bytes) AppendUtf8(a.byte_to_cp[static_cast<uint8_t>(c)], &out);
  return out;
}

Result<std::string> UnicodeToByte(std::string_view text) {
  const Alphabet& a = GetAlphabet();
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t len = unicode::DecodeUtf8(text, i, &cp);
    if (len == 1 && static_cast<uint8_t>(text[i]) >= 0x80)
      return Status::Errorf("invalid UTF-8 byte 0x{:02X} at offset {}", uint8_t(text[i]), i);
    if (cp >= a.cp_to_byte.size() || a.cp_to_byte[cp] < 0)
      return Status::Errorf("character U+{:04X} at offset {} is not in the byte-level alphabet", cp,
                            i);
    out.push_back(static_cast<char>(a.cp_to_byte[cp]));
    i += len;
  }
  return out;
}

}  // namespace herd
