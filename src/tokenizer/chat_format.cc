#include "tokenizer/chat_format.h"

namespace herd {

namespace {
Result<int32_t> Special(const Tokenizer& tok, std::string_view text) {
  auto id = tok.SpecialId(text);
  if (!id)
    return Status::Errorf("{}: tokenizer has no special token {} (not a Llama 3 vocabulary?)",
                          tok.source(), text);
  return *id;
}
}  // namespace

Result<std::vector<int32_t>> EncodeLlama3Header(const Tokenizer& tok, std::string_view role) {
  std::vector<int32_t> out;
  HERD_ASSIGN_OR_RETURN(int32_t start, Special(tok, "<|start_header_id|>"));
  HERD_ASSIGN_OR_RETURN(int32_t end, Special(tok, "<|end_header_id|>"));
  out.push_back(start);
  tok.EncodeOrdinary(role == "tool" ? "ipython" : role, &out);
  out.push_back(end);
  tok.EncodeOrdinary("\n\n", &out);
  return out;
}

Result<std::vector<int32_t>> EncodeLlama3Message(const Tokenizer& tok, const ChatMessage& message) {
  HERD_ASSIGN_OR_RETURN(std::vector<int32_t> out, EncodeLlama3Header(tok, message.role));
  tok.EncodeOrdinary(message.content, &out);
  HERD_ASSIGN_OR_RETURN(int32_t end,
                        Special(tok, message.end_of_message ? "<|eom_id|>" : "<|eot_id|>"));
  out.push_back(end);
  return out;
}

Result<std::vector<int32_t>> EncodeLlama3Dialog(const Tokenizer& tok,
                                                std::span<const ChatMessage> messages,
                                                bool add_generation_prompt) {
  HERD_ASSIGN_OR_RETURN(int32_t bos, Special(tok, "<|begin_of_text|>"));
  std::vector<int32_t> out = {bos};
  for (const auto& m : messages) {
    HERD_ASSIGN_OR_RETURN(auto ids, EncodeLlama3Message(tok, m));
    out.insert(out.end(), ids.begin(), ids.end());
  }
  if (add_generation_prompt) {
    HERD_ASSIGN_OR_RETURN(auto ids, EncodeLlama3Header(tok, "assistant"));
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

}  // namespace herd
