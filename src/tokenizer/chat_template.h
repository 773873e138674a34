// Chat formats chosen from the model: Llama 3's header / eot framing (chat_format.h), and ChatML
// (<|im_start|>role\n ... <|im_end|>\n), which SmolLM2, Qwen and others use. The format is
// detected from the model's chat template (tokenizer_config.json / GGUF tokenizer.chat_template),
// falling back to the special tokens the vocabulary has. herd encodes the framing itself rather
// than running the Jinja template; only facts are read from the template (which format, the default
// system prompt, Llama 3.1's dated system header).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace herd {

enum class ChatFormat { kLlama3, kChatML };

struct ChatStyle {
  ChatFormat format = ChatFormat::kLlama3;
  // ChatML templates that insert a system message when the dialog has none (SmolLM2: "You are a
  // helpful AI assistant named SmolLM, trained by Hugging Face"); empty if none.
  std::string default_system;
  // Llama 3.1+: the system message starts with "Cutting Knowledge Date: ...\nToday Date: ...\n\n".
  bool dated_system_header = false;
};

const char* ChatFormatName(ChatFormat f);

// Error when the vocabulary lacks the format's special tokens.
Result<ChatStyle> DetectChatStyle(std::string_view chat_template, const Tokenizer& tok);

// Tokens that open a conversation: <|begin_of_text|> for Llama 3, the default system message (if
// any and if `system` is empty) or the given system message.
Result<std::vector<int32_t>> EncodeChatStart(const ChatStyle& style, const Tokenizer& tok,
                                             const std::string& system);
// One user (or other role) message, then the assistant header the reply follows.
Result<std::vector<int32_t>> EncodeChatTurn(const ChatStyle& style, const Tokenizer& tok,
                                            const ChatMessage& message);
// Start + one turn: a whole single-question prompt.
Result<std::vector<int32_t>> EncodeChatPrompt(const ChatStyle& style, const Tokenizer& tok,
                                              const std::string& system, const std::string& user);
// A whole dialog (an API's message list): the start, with the first message as the system prompt
// when its role is "system", every other message in order (a later system message is encoded in
// place), then the assistant header when add_generation_prompt.
Result<std::vector<int32_t>> EncodeChatDialog(const ChatStyle& style, const Tokenizer& tok,
                                              std::span<const ChatMessage> messages,
                                              bool add_generation_prompt = true);
// The id that ends an assistant turn (<|eot_id|> / <|im_end|>) and the tokens that close a reply
// after it (ChatML's trailing "\n").
Result<int32_t> EndOfTurnId(const ChatStyle& style, const Tokenizer& tok);
std::vector<int32_t> AfterEndOfTurn(const ChatStyle& style, const Tokenizer& tok);

}  // namespace herd
