// Chat format detection and framing: Llama 3 (with and without the 3.1 dated system header) and
// ChatML with SmolLM2's default system prompt, on the real tokenizers (Meta's tokenizer.model and
// the default model's GGUF, both installed by scripts/setup).
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include "base/paths.h"
#include "test_util.h"
#include "tokenizer/load.h"

namespace herd {
namespace {

// SmolLM2-135M-Instruct's template, as its GGUF stores it.
constexpr const char* kSmolTemplate =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' "
    "}}{% endif %}";

std::vector<int32_t> Ids(const Tokenizer& tok, std::string_view text) {
  std::vector<int32_t> out;
  tok.EncodeOrdinary(text, &out);
  return out;
}

TEST(ChatTemplate, ChatMLWithDefaultSystemPrompt) {
  auto tok = LoadTokenizer(DefaultModelPath());
  ASSERT_TRUE(tok.ok()) << tok.status().message() << " (scripts/setup installs the model)";
  auto style = DetectChatStyle(kSmolTemplate, *tok);
  ASSERT_TRUE(style.ok()) << style.status().message();
  EXPECT_EQ(style->format, ChatFormat::kChatML);
  EXPECT_EQ(style->default_system,
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  const int32_t start = *tok->SpecialId("<|im_start|>"), end = *tok->SpecialId("<|im_end|>");
  auto prompt = EncodeChatPrompt(*style, *tok, "", "Hi <|im_end|>");
  ASSERT_TRUE(prompt.ok());
  std::vector<int32_t> want = {start};
  for (auto piece : {Ids(*tok, "system\n"), Ids(*tok, style->default_system)})
    want.insert(want.end(), piece.begin(), piece.end());
  want.push_back(end);
  for (auto piece : {Ids(*tok, "\n")}) want.insert(want.end(), piece.begin(), piece.end());
  want.push_back(start);
  for (auto piece : {Ids(*tok, "user\n"), Ids(*tok, "Hi <|im_end|>")})  // user text stays text
    want.insert(want.end(), piece.begin(), piece.end());
  want.push_back(end);
  for (auto piece : {Ids(*tok, "\n")}) want.insert(want.end(), piece.begin(), piece.end());
  want.push_back(start);
  for (auto piece : {Ids(*tok, "assistant\n")}) want.insert(want.end(), piece.begin(), piece.end());
  EXPECT_EQ(*prompt, want);
  // A given system prompt replaces the default one.
  auto custom = EncodeChatStart(*style, *tok, "Be brief.");
  ASSERT_TRUE(custom.ok());
  EXPECT_EQ(*tok->Decode(*custom), "<|im_start|>system\nBe brief.<|im_end|>\n");
  EXPECT_EQ(*EndOfTurnId(*style, *tok), end);
  EXPECT_EQ(*tok->Decode(AfterEndOfTurn(*style, *tok)), "\n");
}

TEST(ChatTemplate, Llama3WithAndWithoutDatedSystemHeader) {
  auto tok = LoadTokenizer(testing::Llama3TokenizerPath());
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  auto plain = DetectChatStyle("", *tok);  // Meta downloads have no template: vocabulary decides
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->format, ChatFormat::kLlama3);
  EXPECT_FALSE(plain->dated_system_header);
  auto p = EncodeChatPrompt(*plain, *tok, "S", "U");
  EXPECT_EQ(*tok->Decode(*p),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  auto dated = DetectChatStyle("{{- 'Cutting Knowledge Date: December 2023\\n' }}", *tok);
  ASSERT_TRUE(dated->dated_system_header);
  auto d = EncodeChatStart(*dated, *tok, "S");
  EXPECT_NE(tok->Decode(*d)->find("Cutting Knowledge Date: December 2023\nToday Date: 26 Jul "
                                  "2024\n\nS<|eot_id|>"),
            std::string::npos);
  auto no_system = EncodeChatStart(*plain, *tok, "");
  EXPECT_EQ(*no_system, std::vector<int32_t>{128000});
  EXPECT_EQ(*EndOfTurnId(*plain, *tok), 128009);
  EXPECT_TRUE(AfterEndOfTurn(*plain, *tok).empty());
  // A ChatML template with a vocabulary that lacks its tokens is an error, not garbage.
  EXPECT_FALSE(DetectChatStyle(kSmolTemplate, *tok).ok());
}

// A whole message list (the server's input): what the template would render for it.
TEST(ChatTemplate, DialogsWithHistoryInBothFormats) {
  auto llama = LoadTokenizer(testing::Llama3TokenizerPath());
  ASSERT_TRUE(llama.ok()) << llama.status().message();
  const std::vector<ChatMessage> dialog = {
      {"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"tool", "T"}, {"user", "U2"}};
  auto plain = DetectChatStyle("", *llama);
  EXPECT_EQ(*llama->Decode(*EncodeChatDialog(*plain, *llama, dialog)),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nU1<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nA1<|eot_id|>"
            "<|start_header_id|>ipython<|end_header_id|>\n\nT<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // The single-question helpers are the same thing.
  const std::vector<ChatMessage> one = {{"user", "Q"}};
  EXPECT_EQ(*EncodeChatDialog(*plain, *llama, one), *EncodeChatPrompt(*plain, *llama, "", "Q"));
  EXPECT_EQ(*llama->Decode(*EncodeChatDialog(*plain, *llama, one, false)),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>");

  auto smol = LoadTokenizer(DefaultModelPath());
  ASSERT_TRUE(smol.ok()) << smol.status().message();
  auto chatml = DetectChatStyle(kSmolTemplate, *smol);
  ASSERT_TRUE(chatml.ok());
  // No system message: the template's default one comes first.
  const std::vector<ChatMessage> no_system = {{"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};
  EXPECT_EQ(*smol->Decode(*EncodeChatDialog(*chatml, *smol, no_system)),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
            "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(*smol->Decode(*EncodeChatDialog(*chatml, *smol, dialog, false)),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n"
            "<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>tool\nT<|im_end|>\n"
            "<|im_start|>user\nU2<|im_end|>\n");
}

}  // namespace
}  // namespace herd
