// BPE training (tokenizer/bpe_train.h): hand-derived merges, the tie-break rule, determinism,
// chunked parallel counting, and that a trained file loads with its specials and round-trips bytes.
#include "tokenizer/bpe_train.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "tokenizer/load.h"
#include "tokenizer/pretokenize.h"

namespace herd {
namespace {

using Words = std::vector<std::pair<std::string, uint64_t>>;

std::vector<std::string> Merged(const BpeTrainResult& r) {
  return std::vector<std::string>(r.ranks.begin() + 256, r.ranks.end());
}

BpeTrainResult Train(const Words& words, int32_t extra_ranks, uint64_t min_frequency = 1) {
  BpeTrainOptions o;
  o.vocab_size = 256 + extra_ranks + kBpeTrainSpecialTokens;
  o.min_frequency = min_frequency;
  auto r = TrainBpe(words, o);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return std::move(r).value();
}

Tokenizer Load(const BpeTrainResult& r) {
  auto data = ParseTiktoken(TiktokenFile(r.ranks), "trained");
  EXPECT_TRUE(data.ok()) << data.status().message();
  auto tok = Tokenizer::Create(std::move(data).value());
  EXPECT_TRUE(tok.ok()) << tok.status().message();
  return std::move(tok).value();
}

TEST(BpeTrain, CountsLlama3Pieces) {
  BpeWordCounter c;
  c.Add("ab ab ab abc");
  EXPECT_EQ(c.Words(), (Words{{" ab", 2}, {" abc", 1}, {"ab", 1}}));
  EXPECT_EQ(c.total_words(), 4u);
  EXPECT_EQ(c.total_bytes(), 12u);
}

TEST(BpeTrain, HandDerivedMerges) {
  // Pieces: "ab", " ab" x2, " abc". Pairs: (a,b) 4, (' ',a) 3, (b,c) 1 -> "ab". Then
  // (' ',ab) 3, (ab,c) 1 -> " ab". Then (' ab',c) 1 -> " abc". Then no pair is left.
  BpeWordCounter c;
  c.Add("ab ab ab abc");
  auto r = Train(c.Words(), 10);
  EXPECT_EQ(Merged(r), (std::vector<std::string>{"ab", " ab", " abc"}));
  EXPECT_EQ(r.stopped_early, "no pairs left");
  EXPECT_EQ(r.merges, 3);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(r.ranks[b], std::string(1, char(b)));

  // min_frequency 2 stops before the pair seen once.
  auto r2 = Train(c.Words(), 10, 2);
  EXPECT_EQ(Merged(r2), (std::vector<std::string>{"ab", " ab"}));
  EXPECT_EQ(r2.stopped_early, "min frequency");

  // vocab_size caps the ranks.
  auto r3 = Train(c.Words(), 1);
  EXPECT_EQ(Merged(r3), (std::vector<std::string>{"ab"}));
  EXPECT_EQ(r3.stopped_early, "");

  // The trained tokenizer encodes with these ranks.
  Tokenizer tok = Load(r2);
  EXPECT_EQ(tok.Encode("ab ab abc"), (std::vector<int32_t>{256, 257, 257, 'c'}));
}

TEST(BpeTrain, TieBreakBySmallestBytes) {
  // Equal counts: the pair whose left token's bytes are smallest wins, then the right's.
  auto r = Train(Words{{"xy", 3}, {"ab", 3}, {"ac", 3}, {"zz", 2}}, 4);
  EXPECT_EQ(Merged(r), (std::vector<std::string>{"ab", "ac", "xy", "zz"}));
  // Bytes compare as unsigned: 0xC3 sorts after 'z'.
  auto r2 = Train(Words{{"\xC3\xA9", 5}, {"zz", 5}}, 2);
  EXPECT_EQ(Merged(r2), (std::vector<std::string>{"zz", "\xC3\xA9"}));
  // A higher count beats the tie-break.
  auto r3 = Train(Words{{"ab", 1}, {"zz", 2}}, 1);
  EXPECT_EQ(Merged(r3), (std::vector<std::string>{"zz"}));
}

TEST(BpeTrain, OverlappingPairsAndWeights) {
  // "aaaa" x1: (a,a) counts 3 occurrences. Merging left to right gives [aa, aa]; then (aa,aa).
  auto r = Train(Words{{"aaaa", 1}, {"aaa", 1}}, 10);
  // "aaaa": (a,a) x3; "aaa": (a,a) x2 -> "aa". Then "aaaa" = [aa,aa], "aaa" = [aa,a]: tie at 1,
  // left bytes equal ("aa"), right "a" < "aa" -> "aaa", then "aaaa".
  EXPECT_EQ(Merged(r), (std::vector<std::string>{"aa", "aaa", "aaaa"}));
}

std::string MakeCorpus(size_t lines, uint32_t seed) {
  static const char* kWords[] = {"the",   "quick", "brown",     "fox",   "jumps", "over",
                                 "lazy",  "dog",   "café",      "naïve", "中文",  "🙂",
                                 "hello", "world", "it's",      "don't", "1234",  "3.14159",
                                 "ab",    "abc",   "tokenizer", "llama", "   ",   "\t"};
  std::mt19937 rng(seed);
  std::string s;
  for (size_t l = 0; l < lines; ++l) {
    const int n = 3 + rng() % 12;
    for (int i = 0; i < n; ++i) {
      if (i) s += rng() % 7 ? " " : ", ";
      s += kWords[rng() % std::size(kWords)];
    }
    s += rng() % 5 ? ".\n" : "\n\n";
  }
  return s;
}

TEST(BpeTrain, ChunkedParallelCountingMatchesWholeText) {
  const std::string text = MakeCorpus(60000, 1);  // > 2 MiB: counted in chunks
  ASSERT_GT(text.size(), size_t{2} << 20);
  std::map<std::string, uint64_t> expected;
  SplitLlama3(text, [&](size_t b, size_t e) { ++expected[text.substr(b, e - b)]; });
  ThreadPool pool(4);
  BpeWordCounter c;
  std::string_view v(text);
  c.Add(std::span<const std::string_view>(&v, 1), &pool);
  EXPECT_EQ(c.Words(), Words(expected.begin(), expected.end()));
}

TEST(BpeTrain, Deterministic) {
  const std::string a = MakeCorpus(2000, 2), b = MakeCorpus(2000, 3);
  std::vector<std::string_view> docs = {a, b};
  ThreadPool pool(3);
  BpeWordCounter c1, c2;
  c1.Add(docs, &pool);
  std::vector<std::string_view> reversed = {b, a};
  c2.Add(reversed, nullptr);
  auto words1 = c1.Words(), words2 = c2.Words();
  ASSERT_EQ(words1, words2);
  auto r1 = Train(words1, 300), r2 = Train(words2, 300);
  std::reverse(words2.begin(), words2.end());  // input order does not matter either
  auto r3 = Train(words2, 300);
  EXPECT_EQ(r1.ranks, r2.ranks);
  EXPECT_EQ(r1.ranks, r3.ranks);
  EXPECT_EQ(TiktokenFile(r1.ranks), TiktokenFile(r3.ranks));
}

TEST(BpeTrain, TrainedTokenizerRoundTripsAndHasSpecials) {
  BpeWordCounter c;
  c.Add(MakeCorpus(3000, 4));
  auto r = Train(c.Words(), 80, 2);
  ASSERT_EQ(r.stopped_early, "");
  ASSERT_EQ(r.ranks.size(), 336u);
  Tokenizer tok = Load(r);
  const int32_t n = 336;
  EXPECT_EQ(tok.vocab_size(), n + 256);
  EXPECT_EQ(tok.bos_id(), n);
  EXPECT_EQ(tok.eos_id(), n + 1);
  EXPECT_EQ(tok.SpecialId("<|begin_of_text|>"), n);
  EXPECT_EQ(tok.SpecialId("<|end_of_text|>"), n + 1);
  EXPECT_EQ(tok.SpecialId("<|start_header_id|>"), n + 6);
  EXPECT_EQ(tok.SpecialId("<|eot_id|>"), n + 9);
  EXPECT_EQ(tok.SpecialId("<|reserved_special_token_245|>"), n + 255);
  EXPECT_TRUE(tok.IsSpecial(n + 9));
  EXPECT_FALSE(tok.IsSpecial(n - 1));
  EncodeOptions special;
  special.allow_all_special = true;
  EXPECT_EQ(tok.Encode("<|eot_id|>", special), (std::vector<int32_t>{n + 9}));

  // Trained tokens are used, and arbitrary bytes (invalid UTF-8 too) round-trip.
  EXPECT_LT(tok.Encode("the quick brown fox").size(), 19u);
  std::mt19937 rng(5);
  std::vector<std::string> texts = {"", "the lazy dog's café 中文 🙂", "\xff\xfe abc \x80\xc3",
                                    std::string("nul\0byte", 8), "\r\n\n  \t x"};
  for (int i = 0; i < 200; ++i) {
    std::string s(rng() % 64, '\0');
    for (char& ch : s) ch = static_cast<char>(rng() % 4 ? "abc \n\xc3\xa9"[rng() % 7] : rng());
    texts.push_back(s);
  }
  for (const std::string& t : texts) {
    auto ids = tok.Encode(t);
    for (int32_t id : ids) EXPECT_LT(id, n);
    auto back = tok.Decode(ids);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, t);
  }
}

TEST(BpeTrain, Errors) {
  BpeTrainOptions o;
  o.vocab_size = 511;
  auto r = TrainBpe(Words{{"ab", 1}}, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("at least 512"), std::string::npos);
  o.vocab_size = 512;  // the bytes and the specials only
  auto r2 = TrainBpe(Words{{"ab", 1}}, o);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->ranks.size(), 256u);
  // No words: the byte vocabulary, stopped early.
  o.vocab_size = 600;
  auto r3 = TrainBpe(Words{}, o);
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->ranks.size(), 256u);
  EXPECT_EQ(r3->stopped_early, "no pairs left");
}

TEST(BpeTrain, TiktokenFileFormat) {
  std::vector<std::string> ranks;
  for (int b = 0; b < 256; ++b) ranks.emplace_back(1, char(b));
  ranks.push_back("ab");
  ranks.push_back("abc");
  const std::string f = TiktokenFile(ranks);
  EXPECT_EQ(f.substr(0, 7), "AA== 0\n");
  EXPECT_NE(f.find("\nYWI= 256\nYWJj 257\n"), std::string::npos);
}

}  // namespace
}  // namespace herd
