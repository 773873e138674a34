// Tokenizer core: Unicode classes, the Llama 3 splitter's regex semantics, BPE loops, Meta's own
// test vectors (llama-models llama3/tests/api/test_tokenizer.py), specials, decode and streaming
// decode. Exactness against tiktoken on large inputs lives in tests/python (it needs tiktoken
// itself).
#include <gtest/gtest.h>

#include <cctype>
#include <random>

#include "test_util.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/load.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/unicode.h"

namespace herd {
namespace {

const Tokenizer& Llama3() {
  static const Tokenizer* tok = [] {
    auto t = LoadTokenizer(testing::Llama3TokenizerPath());
    if (!t.ok()) {
      ADD_FAILURE() << t.status().message() << " (run scripts/setup)";
      std::abort();
    }
    return new Tokenizer(std::move(t).value());
  }();
  return *tok;
}

std::vector<std::string> Pieces(std::string_view text) {
  std::vector<std::string> out;
  SplitLlama3(text, [&](size_t b, size_t e) { out.emplace_back(text.substr(b, e - b)); });
  return out;
}

TEST(Unicode, AsciiClasses) {
  using namespace unicode;
  for (uint32_t c = 0; c < 128; ++c) {
    const char ch = static_cast<char>(c);
    const uint8_t want = (std::isalpha(c) ? kLetter : 0) | (std::isdigit(c) ? kNumber : 0) |
                         ((c >= 9 && c <= 13) || c == ' ' ? kSpace : 0) |
                         (c == '\r' || c == '\n' ? kNewline : 0) | (c == ' ' ? kAsciiSpace : 0);
    EXPECT_EQ(CharAt(std::string_view(&ch, 1), 0).cls, want) << c;
    EXPECT_EQ(ClassOf(c), want) << c;
  }
}

TEST(Unicode, Classes) {
  using namespace unicode;
  EXPECT_EQ(ClassOf(U'é'), kLetter);
  EXPECT_EQ(ClassOf(U'中'), kLetter);
  EXPECT_EQ(ClassOf(0x0663), kNumber);   // ARABIC-INDIC DIGIT THREE
  EXPECT_EQ(ClassOf(0x216B), kNumber);   // ROMAN NUMERAL TWELVE (Nl)
  EXPECT_EQ(ClassOf(0x00B2), kNumber);   // SUPERSCRIPT TWO (No)
  EXPECT_EQ(ClassOf(0x3000), kSpace);    // IDEOGRAPHIC SPACE
  EXPECT_EQ(ClassOf(0x0085), kSpace);    // NEL
  EXPECT_EQ(ClassOf(0x200B), 0);         // ZERO WIDTH SPACE is not White_Space
  EXPECT_EQ(ClassOf(0x0301), 0);         // combining acute: Mn, "other"
  EXPECT_EQ(ClassOf(0x113AD), kLetter);  // Tulu-Tigalari, new in Unicode 16.0 (as in tiktoken)
}

TEST(Unicode, DecodeUtf8RejectsMalformed) {
  uint32_t cp;
  for (std::string bad : {"\x80", "\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xED\xA0\x80",
                          "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xE2\x82", "\xFF"}) {
    EXPECT_EQ(unicode::DecodeUtf8(bad, 0, &cp), 1u) << bad;
    EXPECT_EQ(cp, 0xDC00u + static_cast<uint8_t>(bad[0]));
    EXPECT_FALSE(unicode::IsValidUtf8(bad));
  }
  EXPECT_EQ(unicode::DecodeUtf8("\xF0\x9F\x98\x80", 0, &cp), 4u);
  EXPECT_EQ(cp, 0x1F600u);
}

TEST(Unicode, CompleteUtf8Prefix) {
  EXPECT_EQ(unicode::CompleteUtf8Prefix("ab"), 2u);
  EXPECT_EQ(unicode::CompleteUtf8Prefix("a\xF0\x9F\x98"), 1u);  // emoji missing its last byte
  EXPECT_EQ(unicode::CompleteUtf8Prefix("a\xE4"), 1u);
  EXPECT_EQ(unicode::CompleteUtf8Prefix("a\xE0\x80"), 3u);  // can never complete: not held back
  EXPECT_EQ(unicode::CompleteUtf8Prefix("a\x80"), 2u);
  EXPECT_EQ(unicode::CompleteUtf8Prefix("\xC3\xA9"), 2u);
}

// Each expectation follows from the regex's alternatives in order (see pretokenize.h).
TEST(SplitLlama3, RegexSemantics) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Pieces("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(Pieces("I'm HE'LL 'sx"), (V{"I", "'m", " HE", "'LL", " '", "sx"}));
  EXPECT_EQ(Pieces("don\xE2\x80\x99t"),
            (V{"don", "\xE2\x80\x99t"}));            // curly apostrophe: not a contraction
  EXPECT_EQ(Pieces("'\xC5\xBF"), (V{"'\xC5\xBF"}));  // 'ſ: ſ case-folds to s
  EXPECT_EQ(Pieces("1234567"), (V{"123", "456", "7"}));
  EXPECT_EQ(Pieces("a  b"), (V{"a", " ", " b"}));
  EXPECT_EQ(Pieces("a  1"), (V{"a", " ", " ", "1"}));
  EXPECT_EQ(Pieces("x\n\n  y"), (V{"x", "\n\n", " ", " y"}));
  EXPECT_EQ(Pieces("x \n \ty"), (V{"x", " \n", " ", "\ty"}));
  EXPECT_EQ(Pieces("end   "), (V{"end", "   "}));
  EXPECT_EQ(Pieces(" ...\n\nx"), (V{" ...\n\n", "x"}));
  EXPECT_EQ(Pieces("(hello)"), (V{"(hello", ")"}));
  EXPECT_EQ(Pieces("\r\n"), (V{"\r\n"}));
  EXPECT_EQ(Pieces("\xFF\xFEz \xFFz"),
            (V{"\xFF\xFE", "z", " \xFF", "z"}));  // invalid bytes: "other"
  EXPECT_EQ(Pieces(""), V{});
}

TEST(SplitLlama3, PiecesCoverRandomBytesExactly) {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string s(rng() % 64, '\0');
    for (auto& c : s)
      c = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : " a1'\n\xC3\xA9"[rng() % 8]);
    std::string joined;
    for (const auto& p : Pieces(s)) {
      ASSERT_FALSE(p.empty());
      joined += p;
    }
    ASSERT_EQ(joined, s);
  }
}

TEST(Bpe, ShortAndLongLoopsAgree) {
  auto data = LoadTokenizerData(testing::Llama3TokenizerPath());
  ASSERT_TRUE(data.ok()) << data.status().message();
  std::vector<bool> mergeable(data->tokens.size());
  for (size_t i = 0; i < mergeable.size(); ++i) mergeable[i] = data->types[i] == TokenType::kNormal;
  auto bpe = Bpe::Create(data->tokens, mergeable, {}, true);
  ASSERT_TRUE(bpe.ok()) << bpe.status().message();
  std::mt19937 rng(11);
  const std::string alphabet = "abcdeeeeinnorsstt  \xE4\xB8\xAD\xD0\xB0\xD0\xB1";
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s(1 + rng() % 64, '\0');
    for (auto& c : s)
      c = rng() % 8 == 0 ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
    std::vector<int32_t> a, b;
    bpe->EncodeShort(s, &a);
    bpe->EncodeLong(s, &b);
    ASSERT_EQ(a, b) << s;
    std::string back;
    for (int32_t id : a) back += data->tokens[id];
    ASSERT_EQ(back, s);
  }
}

Tokenizer ByteTokenizerWith(const std::vector<std::string>& extra) {
  TokenizerData data;
  for (int b = 0; b < 256; ++b) data.tokens.push_back(std::string(1, static_cast<char>(b)));
  for (const auto& t : extra) data.tokens.push_back(t);
  data.source = "test";
  return std::move(Tokenizer::Create(std::move(data))).value();
}

// The per-thread piece cache must never serve one tokenizer's merges to another, even when a new
// tokenizer is allocated where a destroyed one lived.
TEST(Bpe, PieceCacheIsPerTokenizer) {
  for (int i = 0; i < 50; ++i) {
    {
      Tokenizer a = ByteTokenizerWith({"ab"});
      EXPECT_EQ(a.Encode("abab"), (std::vector<int32_t>{256, 256}));
    }
    {
      Tokenizer b = ByteTokenizerWith({"ba"});
      EXPECT_EQ(b.Encode("abab"), (std::vector<int32_t>{'a', 256, 'b'}));
    }
  }
}

// Meta's test vectors, llama-models llama3/tests/api/test_tokenizer.py.
TEST(Llama3Tokenizer, MetaTestEncodeDecode) {
  const Tokenizer& tok = Llama3();
  EXPECT_EQ(tok.vocab_size(), 128256);
  EXPECT_EQ(tok.SpecialId("<|begin_of_text|>"), 128000);
  EncodeOptions bos;
  bos.add_bos = true;
  auto ids = tok.Encode("This is a test sentence.", bos);
  ids.push_back(tok.eos_id());
  EXPECT_EQ(ids, (std::vector<int32_t>{128000, 2028, 374, 264, 1296, 11914, 13, 128001}));
  auto text = tok.Decode(ids);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "<|begin_of_text|>This is a test sentence.<|end_of_text|>");
}

TEST(Llama3Tokenizer, MetaTestChatFormat) {
  const Tokenizer& tok = Llama3();
  auto msg = EncodeLlama3Message(tok, {"user", "This is a test sentence."});
  ASSERT_TRUE(msg.ok());
  EXPECT_EQ(*msg, (std::vector<int32_t>{128006, 882, 128007, 271, 2028, 374, 264, 1296, 11914, 13,
                                        128009}));
  std::vector<ChatMessage> dialog = {{"system", "This is a test sentence."},
                                     {"user", "This is a response."}};
  auto prompt = EncodeLlama3Dialog(tok, dialog);
  ASSERT_TRUE(prompt.ok());
  EXPECT_EQ(*prompt, (std::vector<int32_t>{128000, 128006, 9125,  128007, 271,    2028,   374,
                                           264,    1296,   11914, 13,     128009, 128006, 882,
                                           128007, 271,    2028,  374,    264,    2077,   13,
                                           128009, 128006, 78191, 128007, 271}));
}

TEST(Llama3Tokenizer, SpecialTokensArePlainTextUnlessAllowed) {
  const Tokenizer& tok = Llama3();
  const std::string text = "a<|eot_id|>b<|start_header_id|>";
  auto plain = tok.Encode(text);
  for (int32_t id : plain) EXPECT_LT(id, 128000);
  EXPECT_EQ(*tok.Decode(plain), text);
  EncodeOptions all;
  all.allow_all_special = true;
  auto special = tok.Encode(text, all);
  EXPECT_EQ(special, (std::vector<int32_t>{64, 128009, 65, 128006}));
  EncodeOptions some;
  some.allowed_special = {"<|eot_id|>"};
  auto partial = tok.Encode(text, some);
  EXPECT_EQ(partial[1], 128009);
  EXPECT_LT(partial.back(), 128000);  // <|start_header_id|> not allowed: text
  EXPECT_EQ(*tok.Decode(partial), text);
}

TEST(Llama3Tokenizer, RoundTripsArbitraryBytes) {
  const Tokenizer& tok = Llama3();
  std::mt19937 rng(3);
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s(rng() % 300, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    auto back = tok.Decode(tok.Encode(s));
    ASSERT_TRUE(back.ok());
    ASSERT_EQ(*back, s);
  }
}

TEST(Llama3Tokenizer, LongRunsAreLinearish) {
  // 1 MB without whitespace and 1 MB of spaces: must finish quickly (O(n log n) merge loop).
  const Tokenizer& tok = Llama3();
  std::string word(1 << 20, 'x');
  for (size_t i = 0; i < word.size(); i += 7) word[i] = 'a' + i % 26;
  EXPECT_EQ(*tok.Decode(tok.Encode(word)), word);
  std::string spaces(1 << 20, ' ');
  EXPECT_EQ(*tok.Decode(tok.Encode(spaces)), spaces);
}

TEST(Llama3Tokenizer, BatchEqualsSequential) {
  const Tokenizer& tok = Llama3();
  std::vector<std::string> docs;
  for (int i = 0; i < 200; ++i)
    docs.push_back("Document " + std::to_string(i) + ": caf\xC3\xA9 " + std::string(i, 'z'));
  std::vector<std::string_view> views(docs.begin(), docs.end());
  auto batch = tok.EncodeBatch(views);
  for (size_t i = 0; i < docs.size(); ++i) EXPECT_EQ(batch[i], tok.Encode(docs[i]));
}

TEST(Llama3Tokenizer, DecodeRejectsOutOfRange) {
  const Tokenizer& tok = Llama3();
  std::vector<int32_t> ids = {1, 128256};
  auto r = tok.Decode(ids);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("128256 at position 1"), std::string::npos)
      << r.status().message();
  ids = {-1};
  EXPECT_FALSE(tok.Decode(ids).ok());
}

TEST(StreamDecoder, HoldsBackPartialCharacters) {
  const Tokenizer& tok = Llama3();
  std::mt19937 rng(5);
  const std::vector<std::string> texts = {
      "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB emoji \xF0\x9F\x87\xAB\xF0\x9F\x87\xB7",
      "\xE4\xB8\xAD\xE6\x96\x87\xE6\xB5\x8B\xE8\xAF\x95 \xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4",
      "\xE0\xB8\xAA\xE0\xB8\xA7\xE0\xB8\xB1\xE0\xB8\xAA\xE0\xB8\x94\xE0\xB8\xB5 plain"};
  for (const auto& text : texts) {
    StreamDecoder dec(tok);
    std::string out;
    for (int32_t id : tok.Encode(text)) {
      auto piece = dec.Push(id);
      ASSERT_TRUE(piece.ok());
      ASSERT_TRUE(unicode::IsValidUtf8(*piece)) << "emitted a broken character";
      out += *piece;
    }
    out += dec.Flush();
    EXPECT_EQ(out, text);
  }
  // An invalid byte becomes U+FFFD; a dangling lead byte is held, then flushed as U+FFFD.
  StreamDecoder dec(tok);
  auto a = dec.Push(tok.Encode("\xFF")[0]);
  EXPECT_EQ(*a, "\xEF\xBF\xBD");
  auto b = dec.Push(tok.Encode("\xE4")[0]);
  EXPECT_EQ(*b, "");
  EXPECT_EQ(dec.pending_bytes(), 1u);
  EXPECT_EQ(dec.Flush(), "\xEF\xBF\xBD");
  EXPECT_FALSE(dec.Push(999999).ok());
}

}  // namespace
}  // namespace herd
