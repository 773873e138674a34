#include "tokenizer/chat_template.h"

namespace herd {
namespace {

constexpr std::string_view kDatedHeader =
    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";

Result<int32_t> Special(const Tokenizer& tok, std::string_view text) {
  auto id = tok.SpecialId(text);
  if (!id)
    return Status::Errorf("{}: the vocabulary has no {} token, which the chat format needs",
                          tok.source(), text);
  return *id;
}

// The text of the system message a ChatML template inserts by default:
// '<|im_start|>system\n' TEXT '<|im_end|>' written inside a Jinja string literal.
std::string DefaultSystem(std::string_view t) {
  const std::string_view open = "<|im_start|>system\n";
  size_t at = t.find(open);
  if (at == std::string_view::npos) return "";
  at += open.size();
  const size_t end = t.find("<|im_end|>", at);
  if (end == std::string_view::npos) return "";
  const std::string_view text = t.substr(at, end - at);
  // A literal default has no Jinja in it; "{{ message['content'] }}"-style slots do.
  if (text.find("{{") != std::string_view::npos || text.find("'") != std::string_view::npos ||
      text.find("{%") != std::string_view::npos)
    return "";
  return std::string(text);
}

Result<std::vector<int32_t>> ChatMLMessage(const Tokenizer& tok, std::string_view role,
                                           std::string_view content) {
  HERD_ASSIGN_OR_RETURN(int32_t start, Special(tok, "<|im_start|>"));
  HERD_ASSIGN_OR_RETURN(int32_t end, Special(tok, "<|im_end|>"));
  std::vector<int32_t> out = {start};
  tok.EncodeOrdinary(std::string(role) + "\n", &out);
  tok.EncodeOrdinary(content, &out);
  out.push_back(end);
  tok.EncodeOrdinary("\n", &out);
  return out;
}

}  // namespace

const char* ChatFormatName(ChatFormat f) { return f == ChatFormat::kChatML ? "ChatML" : "Llama 3"; }

Result<ChatStyle> DetectChatStyle(std::string_view t, const Tokenizer& tok) {
  ChatStyle style;
  const bool has_llama3 = tok.SpecialId("<|start_header_id|>").has_value();
  const bool has_chatml = tok.SpecialId("<|im_start|>").has_value();
  if (t.find("<|im_start|>") != std::string_view::npos ||
      (t.find("<|start_header_id|>") == std::string_view::npos && !has_llama3 && has_chatml)) {
    style.format = ChatFormat::kChatML;
    style.default_system = DefaultSystem(t);
    HERD_RETURN_IF_ERROR(Special(tok, "<|im_start|>").status());
    HERD_RETURN_IF_ERROR(Special(tok, "<|im_end|>").status());
    return style;
  }
  style.format = ChatFormat::kLlama3;
  style.dated_system_header = t.find("Cutting Knowledge Date") != std::string_view::npos;
  HERD_RETURN_IF_ERROR(Special(tok, "<|start_header_id|>").status());
  return style;
}

Result<std::vector<int32_t>> EncodeChatStart(const ChatStyle& style, const Tokenizer& tok,
                                             const std::string& system) {
  if (style.format == ChatFormat::kChatML) {
    const std::string& text = system.empty() ? style.default_system : system;
    if (text.empty()) return std::vector<int32_t>{};
    return ChatMLMessage(tok, "system", text);
  }
  HERD_ASSIGN_OR_RETURN(int32_t bos, Special(tok, "<|begin_of_text|>"));
  std::vector<int32_t> out = {bos};
  if (!system.empty()) {
    const std::string text =
        style.dated_system_header ? std::string(kDatedHeader) + system : system;
    HERD_ASSIGN_OR_RETURN(auto ids, EncodeLlama3Message(tok, {"system", text}));
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

Result<std::vector<int32_t>> EncodeChatTurn(const ChatStyle& style, const Tokenizer& tok,
                                            const ChatMessage& message) {
  if (style.format == ChatFormat::kChatML) {
    HERD_ASSIGN_OR_RETURN(auto out, ChatMLMessage(tok, message.role, message.content));
    HERD_ASSIGN_OR_RETURN(int32_t start, Special(tok, "<|im_start|>"));
    out.push_back(start);
    tok.EncodeOrdinary("assistant\n", &out);
    return out;
  }
  HERD_ASSIGN_OR_RETURN(auto out, EncodeLlama3Message(tok, message));
  HERD_ASSIGN_OR_RETURN(auto header, EncodeLlama3Header(tok, "assistant"));
  out.insert(out.end(), header.begin(), header.end());
  return out;
}

Result<std::vector<int32_t>> EncodeChatPrompt(const ChatStyle& style, const Tokenizer& tok,
                                              const std::string& system, const std::string& user) {
  HERD_ASSIGN_OR_RETURN(auto out, EncodeChatStart(style, tok, system));
  HERD_ASSIGN_OR_RETURN(auto turn, EncodeChatTurn(style, tok, {"user", user}));
  out.insert(out.end(), turn.begin(), turn.end());
  return out;
}

Result<std::vector<int32_t>> EncodeChatDialog(const ChatStyle& style, const Tokenizer& tok,
                                              std::span<const ChatMessage> messages,
                                              bool add_generation_prompt) {
  const bool has_system = !messages.empty() && messages[0].role == "system";
  HERD_ASSIGN_OR_RETURN(auto out,
                        EncodeChatStart(style, tok, has_system ? messages[0].content : ""));
  for (size_t i = has_system ? 1 : 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    HERD_ASSIGN_OR_RETURN(auto ids, style.format == ChatFormat::kChatML
                                        ? ChatMLMessage(tok, m.role, m.content)
                                        : EncodeLlama3Message(tok, m));
    out.insert(out.end(), ids.begin(), ids.end());
  }
  if (add_generation_prompt) {
    if (style.format == ChatFormat::kChatML) {
      HERD_ASSIGN_OR_RETURN(int32_t start, Special(tok, "<|im_start|>"));
      out.push_back(start);
      tok.EncodeOrdinary("assistant\n", &out);
    } else {
      HERD_ASSIGN_OR_RETURN(auto header, EncodeLlama3Header(tok, "assistant"));
      out.insert(out.end(), header.begin(), header.end());
    }
  }
  return out;
}

Result<int32_t> EndOfTurnId(const ChatStyle& style, const Tokenizer& tok) {
  return Special(tok, style.format == ChatFormat::kChatML ? "<|im_end|>" : "<|eot_id|>");
}

std::vector<int32_t> AfterEndOfTurn(const ChatStyle& style, const Tokenizer& tok) {
  std::vector<int32_t> out;
  if (style.format == ChatFormat::kChatML) tok.EncodeOrdinary("\n", &out);
  return out;
}

}  // namespace herd
