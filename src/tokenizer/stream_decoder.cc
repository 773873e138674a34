#include "tokenizer/stream_decoder.h"

#include "tokenizer/unicode.h"

namespace herd {

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    const size_t len = unicode::DecodeUtf8(s, i, &cp);
    if (len == 1 && static_cast<uint8_t>(s[i]) >= 0x80) {
      out += "\xEF\xBF\xBD";
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  return out;
}

Result<std::string> StreamDecoder::Push(int32_t id) {
  if (id < 0 || id >= tokenizer_.vocab_size())
    return Status::Errorf("token id {} is out of range [0, {})", id, tokenizer_.vocab_size());
  pending_ += tokenizer_.TokenBytes(id);
  const size_t complete = unicode::CompleteUtf8Prefix(pending_);
  std::string out = SanitizeUtf8(std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return out;
}

std::string StreamDecoder::Flush() {
  std::string out = SanitizeUtf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace herd
