// Tokenizer export (tokenizer/export.h): merges derived from tiktoken ranks, GGUF metadata and HF
// tokenizer.json / tokenizer_config.json, each checked against Meta's / llama.cpp's layout (the
// golden fixtures) and by loading it back and encoding a corpus like the tiktoken tokenizer.
// With HERD_EXPORT_SAMPLE_DIR set, the exported files are also written there (for
// tools/check_tokenizer_export.py).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <unordered_map>

#include "io/gguf.h"
#include "io/mapped_file.h"
#include "test_util.h"
#include "tokenizer/export.h"
#include "tokenizer/load.h"

namespace herd {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int32_t kBos = 128000, kEndOfText = 128001, kEotId = 128009;

const TokenizerData& Data() {
  static const TokenizerData data = [] {
    auto d = LoadTokenizerData(testing::Llama3TokenizerPath());
    EXPECT_TRUE(d.ok()) << d.status().message();
    return d.ok() ? std::move(d).value() : TokenizerData{};
  }();
  return data;
}

const Tokenizer& Reference() {
  static const Tokenizer tok = *Tokenizer::Create(Data());
  return tok;
}

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// The tiktoken golden inputs, random bytes, random mixes of scripts, digits, whitespace and
// punctuation, and long pieces (over 64 bytes: BPE's other merge loop).
const std::vector<std::string>& Corpus() {
  static const std::vector<std::string> corpus = [] {
    std::vector<std::string> c;
    std::ifstream f(testing::SourcePath("tests/golden/tokenizer/tiktoken_cases.json"));
    const json cases = json::parse(f)["cases"];
    for (const auto& k : cases)
      c.push_back(k.contains("bytes_hex") ? FromHex(k["bytes_hex"]) : k["text"].get<std::string>());
    std::mt19937 rng(1234);
    for (int i = 0; i < 300; ++i) {
      std::string s(rng() % 80, '\0');
      for (char& ch : s) ch = static_cast<char>(rng() % 256);
      c.push_back(s);
    }
    const char* kParts[] = {" ",    "  ",  "\n",   "\r\n", "\t",     "a",      "the",    " The",
                            "'s",   "'LL", "123",  "4567", "é",      "Ü",      "中文",   "日本語",
                            "🦙", "😀",   "\xF0", "!!!",  "...",    "-",      "_",      "مرحبا",
                            "Ἀ",    "ſ",   "\xff", " x",   "Привет", "\u00a0", "\u3000", "्"};
    for (int i = 0; i < 2000; ++i) {
      std::string s;
      for (int k = 1 + rng() % 40; k > 0; --k) s += kParts[rng() % std::size(kParts)];
      c.push_back(s);
    }
    // Concatenations of whole tokens: pieces where BPE must merge across token boundaries.
    for (int i = 0; i < 3000; ++i) {
      std::string s;
      for (int k = 2 + rng() % 2; k > 0; --k) s += Data().tokens[rng() % kBos];
      c.push_back(s);
    }
    for (const char* run : {"a", "ab", " ", "1", "é", "\n", "!", "🦙", "Zq"}) {
      std::string s;
      while (s.size() < 300) s += run;
      c.push_back(s);
      c.push_back("x" + s + " y");
    }
    return c;
  }();
  return corpus;
}

void ExpectSameEncodings(const Tokenizer& tok) {
  const Tokenizer& ref = Reference();
  ASSERT_EQ(tok.vocab_size(), ref.vocab_size());
  int mismatches = 0;
  for (const std::string& text : Corpus()) {
    std::vector<int32_t> got, want;
    tok.EncodeOrdinary(text, &got);
    ref.EncodeOrdinary(text, &want);
    if (got != want && ++mismatches <= 5) ADD_FAILURE() << "encodings differ on " << json(text);
  }
  EXPECT_EQ(mismatches, 0);
  EncodeOptions special;
  special.add_bos = true;
  special.allow_all_special = true;
  const std::string chat =
      "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|python_tag|>x<|image|>";
  EXPECT_EQ(tok.Encode(chat, special), ref.Encode(chat, special));
  EXPECT_EQ(tok.bos_id(), kBos);
  for (int32_t id = kBos; id < ref.vocab_size(); ++id) {
    ASSERT_TRUE(tok.IsSpecial(id)) << id;
    ASSERT_EQ(tok.TokenBytes(id), ref.TokenBytes(id)) << id;
    ASSERT_EQ(tok.SpecialId(ref.TokenBytes(id)), id);
  }
  for (int32_t id = 0; id < kBos; ++id) ASSERT_EQ(tok.TokenBytes(id), ref.TokenBytes(id)) << id;
}

// Meta's Llama 3 (Instruct) settings, as in the fixtures: eos <|eot_id|>.
TokenizerData InstructData() {
  TokenizerData d = Data();
  d.eos_id = kEotId;
  return d;
}

std::string TempDir(const std::string& name) {
  const fs::path dir =
      fs::path(HERD_BINARY_DIR) / "test_data" / (name + "." + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir.string();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Writes the exported files for tools/check_tokenizer_export.py.
TEST(ExportSample, WriteWhenAsked) {
  const char* dir = std::getenv("HERD_EXPORT_SAMPLE_DIR");
  if (!dir || !*dir) GTEST_SKIP() << "HERD_EXPORT_SAMPLE_DIR not set";
  fs::create_directories(dir);
  const TokenizerData data = InstructData();
  WriteFile(std::string(dir) + "/tokenizer.json", HfTokenizerJson(data));
  // A minimal Llama 3 instruct template (the checker compares it with Meta's chat format).
  const std::string tmpl =
      "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + "
      "'<|end_header_id|>\\n\\n' + m['content'] | trim + '<|eot_id|>' }}{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
      "{% endif %}";
  WriteFile(std::string(dir) + "/tokenizer_config.json", HfTokenizerConfigJson(data, tmpl));
  gguf::Writer w;
  w.SetString("general.architecture", "llama");
  AddGgufTokenizerMetadata(data, &w);
  w.SetString("tokenizer.chat_template", tmpl);  // as llama.cpp's converter copies it
  ASSERT_TRUE(w.Write(std::string(dir) + "/tokenizer.gguf").ok());
}

TEST(MergesFromRanks, SmallVocabOrderAndSplits) {
  TokenizerData d;
  for (int b = 0; b < 256; ++b) d.tokens.push_back(std::string(1, static_cast<char>(b)));
  d.tokens.insert(d.tokens.end(), {"aa", "aaaa", "aaa", "<|x|>"});
  d.types.assign(d.tokens.size(), TokenType::kNormal);
  d.types.back() = TokenType::kControl;  // not merged, not a piece
  using M = std::vector<std::pair<int32_t, int32_t>>;
  // Ordered by the merged token's rank, then (left, right); "aaa" (258) is a piece of "aaaa" (257).
  EXPECT_EQ(MergesFromRanks(d),
            (M{{97, 97}, {97, 258}, {256, 256}, {258, 97}, {97, 256}, {256, 97}}));
  d.merges = {{97, 97}};
  EXPECT_EQ(MergesFromRanks(d), (M{{97, 97}}));  // an existing list is kept
}

TEST(MergesFromRanks, EqualsMetaTokenizerJsonAndIsFast) {
  // CPU time as well as wall time: test machines are often busy.
  const std::clock_t cpu_start = std::clock();
  const auto start = std::chrono::steady_clock::now();
  const auto merges = MergesFromRanks(Data());
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const double cpu_ms = 1000.0 * double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  std::printf("MergesFromRanks: %zu merges in %.1f ms (%.1f ms CPU)\n", merges.size(), ms, cpu_ms);
  EXPECT_LT(cpu_ms, 2000);
  auto golden = LoadTokenizerData(testing::XzFixture("tokenizer/llama3-tokenizer.json"));
  ASSERT_TRUE(golden.ok()) << golden.status().message();
  EXPECT_EQ(merges.size(), 280147u);
  EXPECT_TRUE(merges == golden->merges);
}

TEST(MergesFromRanks, EncodesLikeTiktokenRanks) {
  TokenizerData d = Data();
  d.merges = MergesFromRanks(d);
  auto tok = Tokenizer::Create(std::move(d));
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  ExpectSameEncodings(*tok);
}

// The brief's first reading of HF's converter kept only merges whose pieces both rank below the
// merged token; dropping the others (49,630 for Llama 3) changes encodings, e.g. of this text.
TEST(MergesFromRanks, PiecesRankedAboveTheTokenAreNeeded) {
  TokenizerData d = Data();
  std::unordered_map<std::string, int32_t> id_of;
  for (int32_t id = 0; id < kBos; ++id) id_of.emplace(d.tokens[id], id);
  for (const auto& [a, b] : MergesFromRanks(d)) {
    const int32_t merged = id_of.at(d.tokens[a] + d.tokens[b]);
    if (a < merged && b < merged) d.merges.emplace_back(a, b);
  }
  EXPECT_EQ(d.merges.size(), 280147u - 49630u);
  auto restricted = Tokenizer::Create(std::move(d));
  ASSERT_TRUE(restricted.ok());
  const std::string text = " учреждalling577";
  EXPECT_NE(restricted->Encode(text), Reference().Encode(text));
}

// Values of two GGUF metadata entries are equal (type and contents).
bool SameValue(const gguf::Value& a, const gguf::Value& b) {
  return a.type == b.type && a.elem_type == b.elem_type && a.i == b.i && a.s == b.s &&
         a.ints == b.ints && a.strings == b.strings && a.floats == b.floats;
}

TEST(GgufExport, MatchesLlamaCppConverterOutput) {
  gguf::Writer w;
  w.SetString("general.architecture", "llama");
  AddGgufTokenizerMetadata(InstructData(), &w);
  auto bytes = w.Serialize();
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto ours = gguf::File::ParseBytes(std::move(bytes).value());
  auto golden = gguf::File::Open(testing::XzFixture("tokenizer/llama3-tokenizer.gguf"));
  ASSERT_TRUE(ours.ok() && golden.ok());
  // Every key the gguf package wrote (add_sep_token aside) with the same value.
  for (const auto& [key, value] : golden->metadata()) {
    if (key == "tokenizer.ggml.add_sep_token") continue;
    const gguf::Value* v = ours->Find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_TRUE(SameValue(*v, value)) << key;
  }
  const gguf::Value* add_eos = ours->Find("tokenizer.ggml.add_eos_token");
  ASSERT_NE(add_eos, nullptr);
  EXPECT_EQ(add_eos->i, 0);
}

TEST(GgufExport, LoadsBack) {
  const std::string path = TempDir("export_gguf") + "/tokenizer.gguf";
  gguf::Writer w;
  AddGgufTokenizerMetadata(InstructData(), &w);
  ASSERT_TRUE(w.Write(path).ok());
  auto tok = LoadTokenizer(path);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  EXPECT_TRUE(tok->warnings().empty());
  EXPECT_EQ(tok->eos_id(), kEotId);
  ExpectSameEncodings(*tok);
  fs::remove_all(fs::path(path).parent_path());
}

TEST(HfExport, MatchesMetaTokenizerJson) {
  auto golden_text = ReadFileToString(testing::XzFixture("tokenizer/llama3-tokenizer.json"));
  ASSERT_TRUE(golden_text.ok());
  json golden = json::parse(*golden_text);
  json ours = json::parse(HfTokenizerJson(Data()));
  // The fixture writes merges as pairs (tokenizers >= 0.20); ours as "a b", like Meta's file.
  for (auto& m : golden["model"]["merges"])
    m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  EXPECT_EQ(ours["model"]["merges"].size(), 280147u);
  for (const auto& [key, value] : golden.items()) EXPECT_EQ(ours[key], value) << key;
  EXPECT_EQ(ours.size(), golden.size());
}

TEST(HfExport, LoadsBack) {
  const std::string dir = TempDir("export_hf");
  const TokenizerData data = InstructData();
  const std::string text = HfTokenizerJson(data);
  WriteFile(dir + "/tokenizer.json", text);
  auto parsed = ParseHfTokenizerJson(text, "tokenizer.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_TRUE(parsed->ignore_merges);
  EXPECT_TRUE(parsed->warnings.empty());
  EXPECT_EQ(parsed->eos_id, kEndOfText);  // without tokenizer_config.json: Llama 3's default
  WriteFile(dir + "/tokenizer_config.json", HfTokenizerConfigJson(data, "{{ bos_token }}"));
  auto tok = LoadTokenizer(dir);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  EXPECT_EQ(tok->eos_id(), kEotId);  // from tokenizer_config.json
  ExpectSameEncodings(*tok);
  fs::remove_all(dir);
}

TEST(HfExport, TokenizerConfig) {
  const std::string tmpl = "{% for m in messages %}{{ m['content'] }}<|eot_id|>{% endfor %}\n";
  const json config = json::parse(HfTokenizerConfigJson(InstructData(), tmpl));
  EXPECT_EQ(config["bos_token"], "<|begin_of_text|>");
  EXPECT_EQ(config["eos_token"], "<|eot_id|>");
  EXPECT_EQ(config["chat_template"], tmpl);
  EXPECT_EQ(config["model_max_length"], 131072);
  EXPECT_EQ(config["clean_up_tokenization_spaces"], false);
  EXPECT_EQ(config["tokenizer_class"], "PreTrainedTokenizerFast");
  ASSERT_EQ(config["added_tokens_decoder"].size(), 256u);
  EXPECT_EQ(config["added_tokens_decoder"]["128009"]["content"], "<|eot_id|>");
  EXPECT_EQ(config["added_tokens_decoder"]["128009"]["special"], true);
  EXPECT_FALSE(json::parse(HfTokenizerConfigJson(InstructData(), "")).contains("chat_template"));
}

}  // namespace
}  // namespace herd
