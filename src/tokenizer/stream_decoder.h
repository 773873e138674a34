// Streaming detokenization: tokens arrive one at a time and may end in the middle of a UTF-8
// character (Llama 3 splits many CJK characters and emoji across tokens). The decoder holds back an
// incomplete trailing sequence and only ever emits valid UTF-8; bytes that cannot become valid are
// replaced by U+FFFD, one per byte.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "tokenizer/tokenizer.h"

namespace herd {

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}

  // Adds one token; returns the text that is now complete (possibly empty).
  Result<std::string> Push(int32_t id);
  // Ends the stream: returns what was held back (an incomplete sequence becomes U+FFFD per byte).
  std::string Flush();
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;
};

// Copies s, replacing each byte that is not part of a well-formed UTF-8 character by U+FFFD.
std::string SanitizeUtf8(std::string_view s);

}  // namespace herd
