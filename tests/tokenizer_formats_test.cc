// The three tokenizer file forms (tiktoken .model, HF tokenizer.json, GGUF metadata) against the
// goldens that tools/gen_tokenizer_goldens.py wrote from tiktoken, plus the readers' error
// messages.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizer/load.h"

namespace herd {
namespace {

using nlohmann::json;

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

const json& Cases() {
  static const json cases = [] {
    std::ifstream f(testing::SourcePath("tests/golden/tokenizer/tiktoken_cases.json"));
    return json::parse(f)["cases"];
  }();
  return cases;
}

// Paths of the same tokenizer in each form.
std::vector<std::string> Forms() {
  return {testing::Llama3TokenizerPath(), testing::XzFixture("tokenizer/llama3-tokenizer.json"),
          testing::XzFixture("tokenizer/llama3-tokenizer.gguf")};
}

class FormTest : public ::testing::TestWithParam<int> {};

TEST_P(FormTest, MatchesTiktokenGoldens) {
  const std::string path = Forms()[GetParam()];
  ASSERT_FALSE(path.empty());
  auto tok = LoadTokenizer(path);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  EXPECT_EQ(tok->vocab_size(), 128256);
  EXPECT_EQ(tok->bos_id(), 128000);
  ASSERT_GT(Cases().size(), 100u);
  for (const auto& c : Cases()) {
    const std::string text =
        c.contains("bytes_hex") ? FromHex(c["bytes_hex"]) : c["text"].get<std::string>();
    EncodeOptions opts;
    opts.add_bos = c.value("bos", false);
    opts.allow_all_special = c.value("allow_special", false);
    auto ids = tok->Encode(text, opts);
    if (c.value("eos", false)) ids.push_back(128001);  // Meta's eos flag appends <|end_of_text|>
    EXPECT_EQ(ids, c["ids"].get<std::vector<int32_t>>()) << c["name"];
    auto back = tok->Decode(ids);
    ASSERT_TRUE(back.ok());
    if (!opts.add_bos && !c.value("eos", false)) EXPECT_EQ(*back, text) << c["name"];
  }
}

TEST_P(FormTest, SameTokenBytesAndTypes) {
  auto ref = LoadTokenizer(Forms()[0]);
  auto tok = LoadTokenizer(Forms()[GetParam()]);
  ASSERT_TRUE(ref.ok() && tok.ok());
  for (int32_t id = 0; id < ref->vocab_size(); ++id) {
    ASSERT_EQ(ref->TokenBytes(id), tok->TokenBytes(id)) << id;
    ASSERT_EQ(ref->IsSpecial(id), tok->IsSpecial(id)) << id;
  }
}

std::string FormName(const ::testing::TestParamInfo<int>& info) {
  static const char* kNames[] = {"tiktoken", "hf_json", "gguf"};
  return kNames[info.param];
}
INSTANTIATE_TEST_SUITE_P(Llama3, FormTest, ::testing::Values(0, 1, 2), FormName);

// ---- errors: one line naming the file/position and the problem ----

std::string ErrorOf(Result<TokenizerData> r) { return r.ok() ? "" : r.status().message(); }

TEST(TiktokenReader, Errors) {
  EXPECT_EQ(ErrorOf(ParseTiktoken("IQ== 0\nIg== 1\n", "t.model")), "");
  EXPECT_EQ(ErrorOf(ParseTiktoken("IQ== 0\nI*== 1\n", "t.model")),
            "t.model:2: corrupt base64 'I*=='");
  EXPECT_EQ(ErrorOf(ParseTiktoken("IQ== 0\nIg==\n", "t.model")),
            "t.model:2: expected '<base64> <rank>'");
  EXPECT_EQ(ErrorOf(ParseTiktoken("IQ== 0\nIg== x1\n", "t.model")), "t.model:2: bad rank 'x1'");
  EXPECT_EQ(ErrorOf(ParseTiktoken("IQ== 0\nIg== 0\n", "t.model")),
            "t.model:2: rank 0 appears twice");
  EXPECT_EQ(ErrorOf(ParseTiktoken("IQ== 0\nIQ== 1\n", "t.model")),
            "t.model:2: token bytes appear twice (rank 1)");
  EXPECT_EQ(ErrorOf(ParseTiktoken("IQ== 0\nIg== 2\n", "t.model")),
            "t.model: rank 1 is missing (ranks must be 0..n-1)");
  EXPECT_EQ(ErrorOf(ParseTiktoken("", "t.model")),
            "t.model: no tokens (empty or not a tiktoken file)");
  EXPECT_EQ(ErrorOf(ParseTiktoken("IQ= 0\n", "t.model")), "t.model:1: corrupt base64 'IQ='");
  // A vocabulary without a token for some bytes (SmolLM2's lacks 21): those bytes are dropped, as
  // llama.cpp and HF tokenizers do, and BPE does not merge across them.
  auto data = ParseTiktoken("IQ== 0\nIg== 1\nISI= 2\n", "t.model");  // "!", "\"", "!\""
  auto tok = Tokenizer::Create(std::move(data).value());
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  EXPECT_EQ(tok->Encode("!\""), (std::vector<int32_t>{2}));
  EXPECT_EQ(tok->Encode("!x\""), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(tok->Encode("xyz"), (std::vector<int32_t>{}));
}

TEST(TokenizerJsonReader, Errors) {
  EXPECT_EQ(ErrorOf(ParseHfTokenizerJson("{\"model\": ", "t.json")),
            "t.json: invalid JSON at byte 11");
  EXPECT_EQ(ErrorOf(ParseHfTokenizerJson("[]", "t.json")), "t.json: no \"model\" object");
  EXPECT_EQ(ErrorOf(ParseHfTokenizerJson(R"({"model": {"type": "Unigram"}})", "t.json")),
            "t.json: model type \"Unigram\" is not supported (BPE only)");
  EXPECT_EQ(ErrorOf(ParseHfTokenizerJson(R"({"model": {"vocab": {"a": 0, "c": 2}, "merges": []}})",
                                         "t.json")),
            "t.json: no token has id 1 (ids must be 0..n-1)");
  EXPECT_EQ(ErrorOf(ParseHfTokenizerJson(
                R"({"model": {"vocab": {"a": 0, "b": 1}, "merges": ["a c"]}})", "t.json")),
            "t.json: merge 0 'a c' uses a token not in the vocab");
  EXPECT_EQ(ErrorOf(ParseHfTokenizerJson(R"({"model": {"vocab": {"a": "x"}}})", "t.json")),
            "t.json: vocab entry 'a' has a non-integer id");
  EXPECT_EQ(
      ErrorOf(ParseHfTokenizerJson(R"({"model": {"vocab": {" ": 0}}})", "t.json")),
      "t.json: vocab token ' ': character U+0020 at offset 0 is not in the byte-level alphabet");
}

TEST(LoadTokenizer, FileErrors) {
  auto missing = LoadTokenizer("/nonexistent/tokenizer.model");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "/nonexistent/tokenizer.model: cannot open: No such file or directory");
  const std::string dir = std::string(HERD_BINARY_DIR) + "/test_data/empty_dir";
  std::filesystem::create_directories(dir);
  auto empty = LoadTokenizer(dir);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("no tokenizer.json, tokenizer.model or .gguf"),
            std::string::npos);
  const std::string bad_gguf = std::string(HERD_BINARY_DIR) + "/test_data/bad.gguf";
  std::ofstream(bad_gguf) << "GGUF\x03";
  auto g = LoadTokenizer(bad_gguf);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("bad.gguf"), std::string::npos) << g.status().message();
}

}  // namespace
}  // namespace herd
