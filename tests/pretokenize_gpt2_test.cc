// GPT-2 and SmolLM pre-tokenizers (PreTokenizer::kGpt2 / kSmolLM): the splitters piece for piece
// against tests/golden/tokenizer/gpt2_pretok_cases.json (tools/gen_gpt2_pretok_goldens.py: the
// `regex` module and Hugging Face tokenizers), whole tokenizers against tiktoken and Hugging Face
// ids on Llama 3's vocabulary, BPE without ignore_merges, and how the loaders pick the types.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "base/paths.h"
#include "io/gguf_writer.h"
#include "test_util.h"
#include "tokenizer/bpe.h"
#include "tokenizer/load.h"

namespace herd {
namespace {

using nlohmann::json;
using V = std::vector<std::string>;

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

const json& Cases() {
  static const json cases = [] {
    std::ifstream f(testing::SourcePath("tests/golden/tokenizer/gpt2_pretok_cases.json"));
    return json::parse(f)["cases"];
  }();
  return cases;
}

std::string TextOf(const json& c) {
  return c.contains("bytes_hex") ? FromHex(c["bytes_hex"]) : c["text"].get<std::string>();
}

// Expected pieces of a case for key "gpt2" / "smollm" (or their "_hex" forms).
V ExpectedPieces(const json& c, const std::string& key) {
  if (c.contains(key)) return c[key].get<V>();
  V out;
  for (const auto& h : c[key + "_hex"]) out.push_back(FromHex(h));
  return out;
}

V Pieces(PreTokenizer type, std::string_view text) {
  V out;
  Split(type, text, [&](size_t b, size_t e) { out.emplace_back(text.substr(b, e - b)); });
  return out;
}

// ---- the splitters ----

TEST(SplitGpt2, MatchesRegexGoldens) {
  ASSERT_GT(Cases().size(), 100u);
  for (const auto& c : Cases()) {
    const std::string text = TextOf(c);
    EXPECT_EQ(Pieces(PreTokenizer::kGpt2, text), ExpectedPieces(c, "gpt2")) << c["name"];
    V direct;
    SplitGpt2(text, [&](size_t b, size_t e) { direct.push_back(text.substr(b, e - b)); });
    EXPECT_EQ(direct, ExpectedPieces(c, "gpt2")) << c["name"];
  }
}

TEST(SplitSmolLM, MatchesHuggingFaceGoldens) {
  for (const auto& c : Cases()) {
    const std::string text = TextOf(c);
    EXPECT_EQ(Pieces(PreTokenizer::kSmolLM, text), ExpectedPieces(c, "smollm")) << c["name"];
    std::vector<std::pair<uint32_t, uint32_t>> offsets;
    PreTokenize(PreTokenizer::kSmolLM, text, &offsets);
    V from_offsets;
    for (auto [b, e] : offsets) from_offsets.push_back(text.substr(b, e - b));
    EXPECT_EQ(from_offsets, ExpectedPieces(c, "smollm")) << c["name"];
  }
}

// Each expectation follows from the pattern's alternatives in order (see pretokenize_gpt2.cc).
TEST(SplitGpt2, RegexSemantics) {
  auto gpt2 = [](std::string_view s) { return Pieces(PreTokenizer::kGpt2, s); };
  EXPECT_EQ(gpt2("I'm HE'LL 'sx"), (V{"I", "'m", " HE", "'", "LL", " '", "sx"}));
  EXPECT_EQ(gpt2("'s'S"), (V{"'s", "'", "S"}));        // case-sensitive contractions
  EXPECT_EQ(gpt2("'\xC5\xBF"), (V{"'", "\xC5\xBF"}));  // 'ſ is no contraction here
  EXPECT_EQ(gpt2("1234567 x12"), (V{"1234567", " x", "12"}));
  EXPECT_EQ(gpt2("a  b"), (V{"a", " ", " b"}));
  EXPECT_EQ(gpt2("a  1"), (V{"a", " ", " 1"}));
  EXPECT_EQ(gpt2("x\n\n  y"), (V{"x", "\n\n ", " y"}));  // no newline rule, unlike Llama 3
  EXPECT_EQ(gpt2("x \n \ty"), (V{"x", " \n ", "\t", "y"}));
  EXPECT_EQ(gpt2("end   "), (V{"end", "   "}));
  EXPECT_EQ(gpt2(" ...\n\nx"), (V{" ...", "\n", "\n", "x"}));
  EXPECT_EQ(gpt2("(hello)"), (V{"(", "hello", ")"}));
  EXPECT_EQ(gpt2("\xFF\xFEz \xFFz"), (V{"\xFF\xFE", "z", " \xFF", "z"}));  // invalid bytes: other
  EXPECT_EQ(gpt2(""), V{});
}

TEST(SplitSmolLM, DigitsAreAlone) {
  auto smollm = [](std::string_view s) { return Pieces(PreTokenizer::kSmolLM, s); };
  EXPECT_EQ(smollm("x123 4"), (V{"x", "1", "2", "3", " ", "4"}));
  EXPECT_EQ(smollm("a  1"), (V{"a", "  ", "1"}));  // the run before a digit ends its stretch
  EXPECT_EQ(smollm("1'20s"), (V{"1", "'", "2", "0", "s"}));
  EXPECT_EQ(smollm("\xD9\xA3\xC2\xB2x"), (V{"\xD9\xA3", "\xC2\xB2", "x"}));  // ٣ ² are \p{N}
  EXPECT_EQ(smollm("\xE2\x82 1"), (V{"\xE2\x82", " ", "1"}));  // truncated sequence: other
}

TEST(SplitGpt2, PiecesCoverRandomBytesExactly) {
  std::mt19937 rng(7);
  for (PreTokenizer type : {PreTokenizer::kGpt2, PreTokenizer::kSmolLM}) {
    for (int iter = 0; iter < 3000; ++iter) {
      std::string s(rng() % 64, '\0');
      for (auto& c : s)
        c = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : " a1'\n\t\xC3\xA9"[rng() % 9]);
      std::string joined;
      for (const auto& p : Pieces(type, s)) {
        ASSERT_FALSE(p.empty());
        joined += p;
      }
      ASSERT_EQ(joined, s);
    }
  }
}

// ---- whole tokenizers on Llama 3's vocabulary ----

// tiktoken: Llama 3's ranks with tiktoken's GPT-2 pattern (rank-based BPE, whole tokens first).
TEST(Gpt2Tokenizer, MatchesTiktokenOnLlama3Ranks) {
  auto data = LoadTokenizerData(testing::Llama3TokenizerPath());
  ASSERT_TRUE(data.ok()) << data.status().message() << " (run scripts/setup)";
  data->pre = PreTokenizer::kGpt2;
  auto tok = Tokenizer::Create(std::move(data).value());
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  for (const auto& c : Cases()) {
    const std::string text = TextOf(c);
    const auto ids = tok->Encode(text);
    EXPECT_EQ(ids, c["gpt2_ids"].get<std::vector<int32_t>>()) << c["name"];
    EXPECT_EQ(tok->Decode(ids).value(), text) << c["name"];
  }
}

// The committed Llama 3 tokenizer.json (vocab + merges) with another pre_tokenizer section.
std::string Llama3JsonWith(const json& pre_tokenizer, std::optional<bool> ignore_merges) {
  static const json root = [] {
    std::ifstream f(testing::XzFixture("tokenizer/llama3-tokenizer.json"));
    return json::parse(f);
  }();
  json copy = root;
  copy["pre_tokenizer"] = pre_tokenizer;
  if (ignore_merges) {
    copy["model"]["ignore_merges"] = *ignore_merges;
  } else {
    copy["model"].erase("ignore_merges");
  }
  return copy.dump();
}

const json kByteLevel = {{"type", "ByteLevel"},
                         {"add_prefix_space", false},
                         {"trim_offsets", true},
                         {"use_regex", true}};
const json kSmolLMPre = {
    {"type", "Sequence"},
    {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, kByteLevel}}};

// Hugging Face tokenizers with model.ignore_merges false: BPE over the merge list even for pieces
// that are whole tokens (the "ignore_merges ..." cases are tokens the merges do not reach).
void ExpectHfIds(const json& pre, PreTokenizer want, const char* key) {
  auto data = ParseHfTokenizerJson(Llama3JsonWith(pre, false), "llama3-modified.json");
  ASSERT_TRUE(data.ok()) << data.status().message();
  EXPECT_EQ(data->pre, want);
  EXPECT_FALSE(data->ignore_merges);
  EXPECT_TRUE(data->warnings.empty()) << data->warnings[0];
  auto tok = Tokenizer::Create(std::move(data).value());
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  int checked = 0;
  for (const auto& c : Cases()) {
    if (!c.contains(key)) continue;  // bytes cases: Hugging Face takes only text
    EXPECT_EQ(tok->Encode(c["text"].get<std::string>()), c[key].get<std::vector<int32_t>>())
        << c["name"];
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

TEST(Gpt2Tokenizer, MatchesHuggingFaceWithoutIgnoreMerges) {
  ExpectHfIds(kByteLevel, PreTokenizer::kGpt2, "gpt2_hf_ids");
}

TEST(SmolLMTokenizer, MatchesHuggingFaceWithoutIgnoreMerges) {
  ExpectHfIds(kSmolLMPre, PreTokenizer::kSmolLM, "smollm_hf_ids");
}

// SmolLM2-135M-Instruct's own tokenizer (the GGUF scripts/setup installs: pre "smollm", 49,152
// tokens, 48,900 merges, and 21 bytes without a token) against Hugging Face tokenizers rebuilt from
// the same vocabulary and merges with SmolLM2's tokenizer.json settings.
TEST(SmolLMTokenizer, MatchesHuggingFaceOnSmolLM2Gguf) {
  const std::string path = HerdHome() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  auto data = LoadTokenizerData(path);
  ASSERT_TRUE(data.ok()) << data.status().message() << " (scripts/setup installs the model)";
  EXPECT_EQ(data->pre, PreTokenizer::kSmolLM);
  EXPECT_FALSE(data->ignore_merges);
  EXPECT_TRUE(data->warnings.empty()) << data->warnings[0];
  auto tok = Tokenizer::Create(std::move(data).value());
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  int checked = 0;
  for (const auto& c : Cases()) {
    if (!c.contains("smollm2_ids")) continue;
    const std::string text = c["text"];
    const auto ids = tok->Encode(text);
    EXPECT_EQ(ids, c["smollm2_ids"].get<std::vector<int32_t>>()) << c["name"];
    EXPECT_EQ(tok->Decode(ids).value(), text) << c["name"];
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

// ---- BPE over an explicit merge list ----

// 256 byte tokens, then extra tokens; merges by id.
struct TinyVocab {
  std::vector<std::string> tokens;
  TinyVocab() {
    for (int b = 0; b < 256; ++b) tokens.push_back(std::string(1, static_cast<char>(b)));
  }
  int32_t Add(const std::string& s) {
    tokens.push_back(s);
    return static_cast<int32_t>(tokens.size() - 1);
  }
};

// Encode, checked against both merge loops (which never take the whole-token shortcut).
std::vector<int32_t> EncodeWith(const Bpe& bpe, const std::string& s) {
  std::vector<int32_t> out, shrt, lng;
  bpe.Encode(s, &out);
  bpe.EncodeLong(s, &lng);
  if (s.size() <= 64) {
    bpe.EncodeShort(s, &shrt);
    EXPECT_EQ(shrt, out) << s;
  }
  EXPECT_EQ(lng, out) << s;
  return out;
}

TEST(Bpe, MergeRanksWithoutIgnoreMerges) {
  TinyVocab v;
  const int32_t bc = v.Add("bc"), ab = v.Add("ab"), abc = v.Add("abc"), aa = v.Add("aa");
  const int32_t a = 'a', b = 'b', c = 'c';
  // "bc" outranks "ab"; no merge makes "abc", which is a token all the same.
  const std::vector<std::pair<int32_t, int32_t>> merges = {{b, c}, {a, b}, {a, a}};
  const std::vector<bool> mergeable(v.tokens.size(), true);
  auto plain = Bpe::Create(v.tokens, mergeable, merges, /*ignore_merges=*/false);
  auto whole = Bpe::Create(v.tokens, mergeable, merges, /*ignore_merges=*/true);
  ASSERT_TRUE(plain.ok() && whole.ok());
  using Ids = std::vector<int32_t>;
  EXPECT_EQ(EncodeWith(*plain, "abc"), (Ids{a, bc}));  // lowest rank first, "abc" unreachable
  std::vector<int32_t> ids;
  whole->Encode("abc", &ids);
  EXPECT_EQ(ids, (Ids{abc}));  // whole token first
  EXPECT_EQ(EncodeWith(*plain, "ab"), (Ids{ab}));
  EXPECT_EQ(EncodeWith(*plain, "aaa"), (Ids{aa, a}));  // equal ranks: leftmost first
  EXPECT_EQ(EncodeWith(*plain, "aabc"), (Ids{aa, bc}));
  EXPECT_EQ(EncodeWith(*plain, "abcabc"), (Ids{a, bc, a, bc}));
  std::string longer;
  for (int i = 0; i < 50; ++i) longer += "abcaab";
  Ids want;
  for (int i = 0; i < 50; ++i) want.insert(want.end(), {a, bc, a, ab});  // bc, then ab before aa
  EXPECT_EQ(EncodeWith(*plain, longer), want);  // > 64 bytes: the O(n log n) loop
}

// ---- how the loaders pick the pre-tokenizer ----

TEST(PreTokenizerSelection, Names) {
  for (const char* name : {"llama-bpe", "llama3", "llama-v3"})
    EXPECT_EQ(PreTokenizerFromName(name).value(), PreTokenizer::kLlama3) << name;
  for (const char* name : {"gpt-2", "gpt2"})
    EXPECT_EQ(PreTokenizerFromName(name).value(), PreTokenizer::kGpt2) << name;
  EXPECT_EQ(PreTokenizerFromName("smollm").value(), PreTokenizer::kSmolLM);
  for (PreTokenizer p : {PreTokenizer::kLlama3, PreTokenizer::kGpt2, PreTokenizer::kSmolLM})
    EXPECT_EQ(PreTokenizerFromName(PreTokenizerName(p)).value(), p);
  EXPECT_STREQ(PreTokenizerName(PreTokenizer::kGpt2), "gpt-2");  // llama.cpp's spelling
  auto bad = PreTokenizerFromName("qwen2");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "unknown pre-tokenizer \"qwen2\" (supported: llama-bpe, gpt-2, smollm)");
}

TEST(PreTokenizerSelection, Regexes) {
  EXPECT_EQ(PreTokenizerFromRegex(
                R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)")
                .value(),
            PreTokenizer::kGpt2);
  EXPECT_EQ(
      PreTokenizerFromRegex(
          R"('(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s)")
          .value(),
      PreTokenizer::kGpt2);
  EXPECT_FALSE(PreTokenizerFromRegex(R"(\p{N}| ?\p{L}+)").ok());
}

// A tokenizer.json of the 256 byte tokens with one merge and the given pre_tokenizer section.
std::string TinyJson(const json& pre, std::optional<bool> ignore_merges = std::nullopt) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) {
    const char ch = static_cast<char>(b);
    vocab[ByteToUnicode(std::string_view(&ch, 1))] = b;
  }
  vocab["ab"] = 256;
  json root = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b"}}}}};
  if (ignore_merges) root["model"]["ignore_merges"] = *ignore_merges;
  if (!pre.is_discarded()) root["pre_tokenizer"] = pre;
  return root.dump();
}

json SplitStep(const std::string& regex) {
  return {{"type", "Split"},
          {"pattern", {{"Regex", regex}}},
          {"behavior", "Isolated"},
          {"invert", false}};
}

const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

json Seq(std::vector<json> steps) { return {{"type", "Sequence"}, {"pretokenizers", steps}}; }
json ByteLevel(bool prefix_space, std::optional<bool> use_regex) {
  json p = {{"type", "ByteLevel"}, {"add_prefix_space", prefix_space}, {"trim_offsets", true}};
  if (use_regex) p["use_regex"] = *use_regex;
  return p;
}
json Digits(bool individual) { return {{"type", "Digits"}, {"individual_digits", individual}}; }

TEST(PreTokenizerSelection, TokenizerJson) {
  struct Case {
    json pre;
    PreTokenizer want;
    bool warns;
  };
  const std::vector<Case> ok = {
      {ByteLevel(false, true), PreTokenizer::kGpt2, false},
      {ByteLevel(false, std::nullopt), PreTokenizer::kGpt2, false},  // use_regex defaults to true
      {Seq({ByteLevel(false, true)}), PreTokenizer::kGpt2, false},
      {Seq({Digits(true), ByteLevel(false, true)}), PreTokenizer::kSmolLM, false},
      {Seq({SplitStep(kLlama3Regex), ByteLevel(false, false)}), PreTokenizer::kLlama3, false},
      {Seq({SplitStep(kGpt2Regex), ByteLevel(false, false)}), PreTokenizer::kGpt2, false},
      {Seq({SplitStep(kLlama3Regex), ByteLevel(false, true)}), PreTokenizer::kLlama3, true},
      {json{{"type", "Whitespace"}}, PreTokenizer::kLlama3, true},
      {json(nullptr), PreTokenizer::kLlama3, true},
  };
  for (const auto& c : ok) {
    auto data = ParseHfTokenizerJson(TinyJson(c.pre), "t.json");
    ASSERT_TRUE(data.ok()) << c.pre.dump() << ": " << data.status().message();
    EXPECT_EQ(data->pre, c.want) << c.pre.dump();
    EXPECT_EQ(data->warnings.size(), c.warns ? 1u : 0u) << c.pre.dump();
  }
  auto whitespace = ParseHfTokenizerJson(TinyJson({{"type", "Whitespace"}}), "t.json");
  ASSERT_TRUE(whitespace.ok());
  EXPECT_EQ(whitespace->warnings[0],
            "t.json: pre_tokenizer Whitespace is none herd knows and has no Split regex; using "
            "Llama 3's pattern, so token ids may differ from the model's");

  auto err = [](const json& pre) {
    auto data = ParseHfTokenizerJson(TinyJson(pre), "t.json");
    return data.ok() ? std::string() : data.status().message();
  };
  EXPECT_EQ(err(Seq({Digits(false), ByteLevel(false, true)})),
            "t.json: unsupported pre_tokenizer Sequence[Digits(individual_digits=false), "
            "ByteLevel(add_prefix_space=false, trim_offsets=true, use_regex=true)] (supported with "
            "ByteLevel's regex: ByteLevel(add_prefix_space=false), "
            "Sequence[Digits(individual_digits=true), ByteLevel(add_prefix_space=false)])");
  EXPECT_NE(
      err(ByteLevel(true, true)).find("unsupported pre_tokenizer ByteLevel(add_prefix_space=true"),
      std::string::npos);
  EXPECT_NE(err(Seq({ByteLevel(false, true), Digits(true)})).find("unsupported pre_tokenizer"),
            std::string::npos);
  EXPECT_EQ(err(Seq({SplitStep(R"(\p{N}+)"), ByteLevel(false, false)})),
            "t.json: unsupported pre-tokenizer regex: \\p{N}+");

  // model.ignore_merges: as the file says, false when absent.
  EXPECT_FALSE(ParseHfTokenizerJson(TinyJson(ByteLevel(false, true)), "t.json")->ignore_merges);
  EXPECT_TRUE(
      ParseHfTokenizerJson(TinyJson(ByteLevel(false, true), true), "t.json")->ignore_merges);
}

// A GGUF with the 256 byte tokens, "ab" and " 1", and tokenizer.ggml.pre = pre (none when empty).
std::string TinyGguf(const std::string& pre) {
  gguf::Writer w;
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) {
    const char ch = static_cast<char>(b);
    tokens.push_back(ByteToUnicode(std::string_view(&ch, 1)));
  }
  tokens.push_back("ab");
  tokens.push_back(
      "\xC4\xA0"
      "1");  // " 1" ("Ġ1")
  w.SetString("tokenizer.ggml.model", "gpt2");
  if (!pre.empty()) w.SetString("tokenizer.ggml.pre", pre);
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetStringArray("tokenizer.ggml.merges", {"a b", "\xC4\xA0 1"});
  const std::string dir = std::string(HERD_BINARY_DIR) + "/test_data/pretok_gguf";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + (pre.empty() ? "none" : pre) + ".gguf";
  EXPECT_TRUE(w.Write(path).ok());
  return path;
}

TEST(PreTokenizerSelection, Gguf) {
  struct Case {
    std::string pre;
    PreTokenizer want;
    bool ignore_merges;
    bool warns;
  };
  for (const Case& c : {Case{"smollm", PreTokenizer::kSmolLM, false, false},
                        Case{"gpt-2", PreTokenizer::kGpt2, false, false},
                        Case{"gpt2", PreTokenizer::kGpt2, false, false},
                        Case{"llama-bpe", PreTokenizer::kLlama3, true, false},
                        Case{"qwen2", PreTokenizer::kLlama3, true, true},
                        Case{"", PreTokenizer::kLlama3, true, true}}) {
    auto data = LoadGgufTokenizer(TinyGguf(c.pre));
    ASSERT_TRUE(data.ok()) << data.status().message();
    EXPECT_EQ(data->pre, c.want) << c.pre;
    EXPECT_EQ(data->ignore_merges, c.ignore_merges) << c.pre;
    EXPECT_EQ(data->warnings.size(), c.warns ? 1u : 0u) << c.pre;
    auto tok = Tokenizer::Create(std::move(data).value());
    ASSERT_TRUE(tok.ok());
    EXPECT_EQ(tok->pre_tokenizer(), c.want);
    // Only GPT-2's split keeps " 1" together: "ab", " 12" against "ab", " ", "1", "2" (SmolLM)
    // and "ab", " ", "12" (Llama 3).
    EXPECT_EQ(tok->Encode("ab 12"), c.want == PreTokenizer::kGpt2
                                        ? (std::vector<int32_t>{256, 257, '2'})
                                        : (std::vector<int32_t>{256, ' ', '1', '2'}))
        << c.pre;
  }
}

}  // namespace
}  // namespace herd
