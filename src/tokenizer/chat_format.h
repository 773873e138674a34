// Llama 3 chat format, as Meta's llama-models chat_format.py encodes it:
//   <|begin_of_text|>
//   <|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>     (per message; <|eom_id|>
//   when
//                                                                          the message ends a tool
//                                                                          call)
//   <|start_header_id|>assistant<|end_header_id|>\n\n                      (generation prompt)
// Role and content are plain text: special-token text typed by a user stays text.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "tokenizer/tokenizer.h"

namespace herd {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", "ipython" ("tool" is written as "ipython")
  std::string content;
  bool end_of_message = false;  // end with <|eom_id|> instead of <|eot_id|>
};

Result<std::vector<int32_t>> EncodeLlama3Header(const Tokenizer& tok, std::string_view role);
Result<std::vector<int32_t>> EncodeLlama3Message(const Tokenizer& tok, const ChatMessage& message);
// <|begin_of_text|>, every message, then the assistant header if add_generation_prompt.
Result<std::vector<int32_t>> EncodeLlama3Dialog(const Tokenizer& tok,
                                                std::span<const ChatMessage> messages,
                                                bool add_generation_prompt = true);

}  // namespace herd
