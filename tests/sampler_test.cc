#include "generate/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "generate/stop.h"

namespace herd {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr auto npos = std::string::npos;

// Everything off: temperature 1 and no truncation, so the chain is plain softmax sampling.
SamplerParams Plain(uint64_t seed = 1) {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

std::vector<double> Softmax(const std::vector<float>& logits, double temperature) {
  const double mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) sum += p[i] = std::exp((logits[i] - mx) / temperature);
  for (double& x : p) x /= sum;
  return p;
}

// Logits whose softmax (T = 1) is exactly proportional to probs.
std::vector<float> LogitsFor(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(float(std::log(p)));
  return l;
}

std::vector<int> Counts(Sampler& s, const std::vector<float>& logits, int draws) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    std::vector<float> row = logits;
    ++counts[s.Sample(row, {})];
  }
  return counts;
}

double ChiSquare(const std::vector<int>& counts, const std::vector<double>& probs) {
  const double n = std::accumulate(counts.begin(), counts.end(), 0.0);
  double chi2 = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double e = n * probs[i];
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

TEST(Sampler, GreedyPicksArgmaxAndLowestIdOnTies) {
  SamplerParams p = Plain();
  p.temperature = 0;
  Sampler s(p, 6);
  std::vector<float> a = {0.1f, 2.0f, -1.0f, 1.9f, 2.0f, 0.0f};
  EXPECT_EQ(s.Sample(a, {}), 1);
  std::vector<float> b = {-3.0f, -3.0f, -3.0f, -3.0f, -3.0f, -3.0f};
  EXPECT_EQ(s.Sample(b, {}), 0);
  std::vector<float> c = {-kInf, -kInf, 5.0f, kInf, 7.0f, kInf};
  EXPECT_EQ(s.Sample(c, {}), 3);
  ASSERT_EQ(s.LastProbs().size(), 1u);
  EXPECT_EQ(s.LastProbs()[0].id, 3);
  EXPECT_FALSE(s.degenerate());
}

TEST(Sampler, SameSeedSameSequenceOtherSeedsDiffer) {
  std::mt19937 gen(7);
  std::normal_distribution<float> nd(0.0f, 2.0f);  // only makes inputs; not part of the contract
  std::vector<std::vector<float>> rows(300, std::vector<float>(1000));
  for (auto& r : rows) {
    for (float& x : r) x = nd(gen);
  }
  auto run = [&](uint64_t seed) {
    SamplerParams p;  // the defaults: the whole chain
    p.seed = seed;
    Sampler s(p, 1000);
    std::vector<int> picks;
    for (auto r : rows) picks.push_back(s.Sample(r, picks));
    return picks;
  };
  const std::vector<int> a = run(42);
  EXPECT_EQ(a, run(42));
  EXPECT_NE(a, run(43));
  EXPECT_NE(a, run(0));

  // Reseed restarts the stream.
  SamplerParams p;
  p.seed = 42;
  Sampler s(p, 1000);
  std::vector<int> first, second;
  for (auto r : rows) first.push_back(s.Sample(r, first));
  s.Reseed(42);
  for (auto r : rows) second.push_back(s.Sample(r, second));
  EXPECT_EQ(first, second);

  // One draw per sampled call whatever the row: a forced token does not shift the stream.
  Sampler x(Plain(8), 1000), y(Plain(8), 1000);
  std::vector<float> forced(1000, -kInf);
  forced[17] = 0.0f;
  std::vector<float> row = rows[0];
  EXPECT_EQ(x.Sample(forced, {}), 17);
  y.Sample(row, {});
  for (auto r : rows) {
    std::vector<float> r2 = r;
    ASSERT_EQ(x.Sample(r, {}), y.Sample(r2, {}));
  }
}

TEST(Sampler, TopK1EqualsGreedy) {
  std::mt19937 gen(3);
  std::uniform_int_distribution<int> small(-3, 3);  // integer logits: many ties
  SamplerParams greedy = Plain();
  greedy.temperature = 0;
  SamplerParams k1 = Plain(9);
  k1.top_k = 1;
  Sampler g(greedy, 50), s(k1, 50);
  for (int rep = 0; rep < 500; ++rep) {
    std::vector<float> a(50);
    for (float& x : a) x = float(small(gen));
    std::vector<float> b = a;
    ASSERT_EQ(s.Sample(a, {}), g.Sample(b, {})) << rep;
  }
}

// 20,000 draws over 8 tokens. Under a correct sampler, sum (O - E)^2 / E is chi-square with 7
// degrees of freedom (every expected count here is >= 100, so the approximation is good);
// P(chi2_7 > 35) = 1.1e-5, so a correct sampler fails this for about 1 seed in 90,000. The same
// counts tested against softmax at T = 1.2 (a plausible bug) must score far above the bound.
TEST(Sampler, EmpiricalDistributionMatchesSoftmax) {
  const std::vector<float> logits = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, -1.0f, -0.5f, 2.5f};
  const std::vector<double> probs = Softmax(logits, 1.0);
  for (uint64_t seed : {1, 2, 3, 4, 5}) {
    Sampler s(Plain(seed), 8);
    const std::vector<int> counts = Counts(s, logits, 20000);
    EXPECT_LT(ChiSquare(counts, probs), 35.0) << "seed " << seed;
    EXPECT_GT(ChiSquare(counts, Softmax(logits, 1.2)), 100.0) << "seed " << seed;
  }
}

TEST(Sampler, TemperatureScalesTheDistribution) {
  const std::vector<float> logits = {1.0f, 0.0f, -1.0f, 2.0f};
  for (float t : {0.25f, 0.5f, 1.0f, 2.0f, 10.0f}) {
    SamplerParams p = Plain();
    p.temperature = t;
    Sampler s(p, 4);
    std::vector<float> row = logits;
    s.Sample(row, {});
    const std::vector<double> want = Softmax(logits, t);
    const std::vector<TokenProb> got = s.LastProbs();
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0].id, 3);  // sorted by prob desc
    for (const TokenProb& tp : got) EXPECT_NEAR(tp.prob, want[tp.id], 1e-6) << "T=" << t;
  }
  // Empirically: a lower temperature concentrates mass on the top token.
  SamplerParams cold = Plain(5), hot = Plain(5);
  cold.temperature = 0.5f;
  hot.temperature = 2.0f;
  Sampler sc(cold, 4), sh(hot, 4);
  const int top_cold = Counts(sc, logits, 5000)[3], top_hot = Counts(sh, logits, 5000)[3];
  // Expected 0.865 * 5000 = 4325 and 0.455 * 5000 = 2276; standard deviations are 24 and 35.
  EXPECT_NEAR(top_cold, 4325, 200);
  EXPECT_NEAR(top_hot, 2276, 200);
}

// Ids in a scrambled order so that the sort inside the chain matters.
const std::vector<int> kIds = {5, 2, 7, 0, 3, 6, 1, 4};
const std::vector<double> kProbs = {0.35, 0.25, 0.15, 0.1, 0.06, 0.04, 0.03, 0.02};

std::vector<float> ScrambledLogits() {
  std::vector<double> probs(8);
  for (int i = 0; i < 8; ++i) probs[kIds[i]] = kProbs[i];
  return LogitsFor(probs);
}

void ExpectOnlyDrawn(Sampler& s, const std::vector<int>& allowed) {
  const std::vector<int> counts = Counts(s, ScrambledLogits(), 20000);
  for (int id = 0; id < 8; ++id) {
    const bool in = std::find(allowed.begin(), allowed.end(), id) != allowed.end();
    EXPECT_EQ(counts[id] > 0, in) << "id " << id << (in ? " is never drawn" : " is drawn");
  }
  std::vector<int> listed;
  for (const TokenProb& tp : s.LastProbs()) listed.push_back(tp.id);
  EXPECT_EQ(listed, allowed);  // LastProbs is sorted by prob desc
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  SamplerParams p = Plain();
  p.top_p = 0.7f;  // 0.35 + 0.25 = 0.6 < 0.7 <= 0.75: three tokens
  Sampler s(p, 8);
  ExpectOnlyDrawn(s, {5, 2, 7});
  const std::vector<TokenProb> probs = s.LastProbs();
  EXPECT_NEAR(probs[0].prob, 0.35 / 0.75, 1e-6);
  EXPECT_NEAR(probs[2].prob, 0.15 / 0.75, 1e-6);
  p.top_p = 0.1f;  // always at least one token
  Sampler one(p, 8);
  ExpectOnlyDrawn(one, {5});
}

TEST(Sampler, MinPKeepsTokensAboveFractionOfMax) {
  SamplerParams p = Plain();
  p.min_p = 0.25f;  // threshold 0.0875: keeps 0.35, 0.25, 0.15, 0.1
  Sampler s(p, 8);
  ExpectOnlyDrawn(s, {5, 2, 7, 0});
  p.top_p = 0.7f;  // both: the intersection
  Sampler both(p, 8);
  ExpectOnlyDrawn(both, {5, 2, 7});
  p.top_p = 1.0f;
  p.top_k = 2;
  Sampler k(p, 8);
  ExpectOnlyDrawn(k, {5, 2});
}

// Llama 3 sized vocabulary: the bucketed nucleus search (top_p alone) and the top_k + top_p path
// must keep exactly the prefix that a full sort finds.
TEST(Sampler, TopPOnLargeVocabMatchesFullSort) {
  const int vocab = 128256;
  std::mt19937 gen(11);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (int top_k : {0, 2000}) {
    for (float top_p : {0.5f, 0.9f, 0.99f}) {
      std::vector<float> logits(vocab);
      for (float& x : logits) x = nd(gen);
      SamplerParams p = Plain();
      p.top_k = top_k;
      p.top_p = top_p;
      Sampler s(p, vocab);
      std::vector<float> row = logits;
      s.Sample(row, {});

      std::vector<int> order(vocab);
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
      if (top_k > 0) order.resize(top_k);
      std::vector<float> head;
      for (int id : order) head.push_back(logits[id]);
      const std::vector<double> probs = Softmax(head, 1.0);  // probs[i] is for order[i]
      double cum = 0;
      size_t keep = 0;
      while (cum < top_p) cum += probs[keep++];
      const std::vector<TokenProb> got = s.LastProbs();
      ASSERT_EQ(got.size(), keep) << "top_k " << top_k << " top_p " << top_p;
      // The same set; LastProbs orders by float prob, where neighbours in logit order can tie.
      std::vector<int> got_ids, want_ids(order.begin(), order.begin() + keep);
      double sum = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        got_ids.push_back(got[i].id);
        sum += got[i].prob;
        if (i > 0) {
          ASSERT_LE(got[i].prob, got[i - 1].prob);
        }
      }
      std::sort(got_ids.begin(), got_ids.end());
      std::sort(want_ids.begin(), want_ids.end());
      EXPECT_EQ(got_ids, want_ids);
      EXPECT_NEAR(sum, 1.0, 1e-5);
      EXPECT_NEAR(got[0].prob, probs[0] / cum, 1e-6);
    }
  }
}

TEST(Sampler, PenaltiesChangeLogitsAsDocumented) {
  const std::vector<float> base = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f};
  const std::vector<int> history = {0, 4, 1, 1, 3, 1, 5};
  SamplerParams p = Plain();
  p.temperature = 0;  // greedy: Sample leaves the penalised logits in the row
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 4;  // the window is {1, 3, 1, 5}: each id once, whatever its count
  Sampler r(p, 6);
  std::vector<float> row = base;
  r.Sample(row, history);
  EXPECT_EQ(row, (std::vector<float>{2.0f, -2.0f, 0.5f, 1.5f, -2.0f, 0.5f}));

  p.repeat_last_n = -1;  // the whole history
  Sampler all(p, 6);
  row = base;
  all.Sample(row, history);
  EXPECT_EQ(row, (std::vector<float>{1.0f, -2.0f, 0.5f, 1.5f, -4.0f, 0.5f}));

  p.repeat_last_n = 0;  // off
  Sampler off(p, 6);
  row = base;
  off.Sample(row, history);
  EXPECT_EQ(row, base);

  p.repeat_penalty = 1.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;  // counts: 0:1, 1:3, 3:1, 4:1, 5:1
  Sampler pf(p, 6);
  row = base;
  pf.Sample(row, history);
  EXPECT_EQ(row, (std::vector<float>{2.0f - 0.75f, -1.0f - 1.25f, 0.5f, 3.0f - 0.75f, -2.0f - 0.75f,
                                     1.0f - 0.75f}));
  // Ids outside the vocabulary in the history are ignored.
  row = base;
  pf.Sample(row, std::vector<int>{-1, 6, 1000});
  EXPECT_EQ(row, base);
}

TEST(Sampler, LogitBiasBansAndForcesTokens) {
  SamplerParams p = Plain(3);
  p.logit_bias = {{1, -kInf}};
  Sampler ban(p, 4);
  const std::vector<float> logits = {0.0f, 5.0f, 0.0f, 0.5f};  // id 1 would win ~97%
  EXPECT_EQ(Counts(ban, logits, 5000)[1], 0);
  p.temperature = 0;
  Sampler greedy_ban(p, 4);
  std::vector<float> row = logits;
  EXPECT_EQ(greedy_ban.Sample(row, {}), 3);

  p = Plain(3);
  p.logit_bias = {{2, kInf}, {0, 1.0f}};
  Sampler force(p, 4);
  EXPECT_EQ(Counts(force, logits, 1000)[2], 1000);
  p.logit_bias = {{1, kInf}, {3, kInf}};  // several +inf: uniform over them
  Sampler two(p, 4);
  const std::vector<int> counts = Counts(two, logits, 4000);
  EXPECT_EQ(counts[1] + counts[3], 4000);
  EXPECT_NEAR(counts[1], 2000, 200);  // sd 32
}

TEST(Sampler, NaNIsNeverPickedAndAllMaskedIsDefined) {
  const std::vector<float> logits = {kNaN, 1.0f, kNaN, 0.0f, kNaN};
  Sampler s(Plain(), 5);
  const std::vector<int> counts = Counts(s, logits, 5000);
  EXPECT_EQ(counts[0] + counts[2] + counts[4], 0);
  EXPECT_GT(counts[3], 0);
  EXPECT_FALSE(s.degenerate());
  SamplerParams p = Plain();
  p.temperature = 0;
  Sampler g(p, 5);
  std::vector<float> row = logits;
  EXPECT_EQ(g.Sample(row, {}), 1);

  // Nothing can be drawn: id 0, flagged, both greedy and sampled.
  for (float t : {0.0f, 1.0f}) {
    p.temperature = t;
    Sampler d(p, 3);
    std::vector<float> masked = {kNaN, -kInf, kNaN};
    EXPECT_EQ(d.Sample(masked, {}), 0);
    EXPECT_TRUE(d.degenerate());
    EXPECT_TRUE(d.LastProbs().empty());
    std::vector<float> fine = {0.0f, 1.0f, 2.0f};
    d.Sample(fine, {});
    EXPECT_FALSE(d.degenerate());
  }
}

TEST(Sampler, ValidateRejectsMeaninglessParams) {
  EXPECT_TRUE(ValidateSamplerParams(SamplerParams{}, 10).ok());
  EXPECT_FALSE(ValidateSamplerParams(SamplerParams{}, 0).ok());
  auto error = [](auto mutate, int vocab = 10) {
    SamplerParams p;
    mutate(p);
    Status st = ValidateSamplerParams(p, vocab);
    return st.ok() ? std::string("OK") : st.message();
  };
  EXPECT_NE(error([](SamplerParams& p) { p.temperature = -0.1f; }).find("temperature"), npos);
  EXPECT_NE(error([](SamplerParams& p) { p.temperature = kNaN; }).find("temperature"), npos);
  EXPECT_NE(error([](SamplerParams& p) { p.top_p = 0; }).find("top_p"), npos);
  EXPECT_NE(error([](SamplerParams& p) { p.top_p = 1.5f; }).find("top_p"), npos);
  EXPECT_NE(error([](SamplerParams& p) { p.top_p = kNaN; }).find("top_p"), npos);
  EXPECT_NE(error([](SamplerParams& p) { p.min_p = -0.1f; }).find("min_p"), npos);
  EXPECT_NE(error([](SamplerParams& p) { p.min_p = kNaN; }).find("min_p"), npos);
  EXPECT_NE(error([](SamplerParams& p) { p.repeat_penalty = 0; }).find("repeat_penalty"), npos);
  EXPECT_NE(error([](SamplerParams& p) { p.repeat_last_n = -2; }).find("repeat_last_n"), npos);
  EXPECT_NE(error([](SamplerParams& p) { p.presence_penalty = kInf; }).find("presence"), npos);
  EXPECT_NE(error([](SamplerParams& p) { p.frequency_penalty = kNaN; }).find("frequency"), npos);
  EXPECT_EQ(error([](SamplerParams& p) {
              p.logit_bias = {{10, 1.0f}};
            }),
            "sampler: logit_bias token id 10 is outside the vocabulary [0, 10)");
  EXPECT_NE(error([](SamplerParams& p) { p.logit_bias = {{-1, 1.0f}}; }).find("outside"), npos);
  EXPECT_NE(error([](SamplerParams& p) { p.logit_bias = {{3, kNaN}}; }).find("NaN"), npos);
  // Limits that are meaningful stay valid.
  EXPECT_EQ(error([](SamplerParams& p) {
              p.temperature = 0;
              p.top_p = 1;
              p.min_p = 1;
              p.top_k = -5;
              p.repeat_last_n = -1;
              p.presence_penalty = -2;
              p.logit_bias = {{0, -kInf}, {9, kInf}};
            }),
            "OK");
}

// Feeds pieces and returns everything emitted (including Flush) and whether a stop fired.
std::pair<std::string, bool> Feed(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  bool stopped = false;
  for (const std::string& piece : pieces) {
    out += m.Push(piece, &stopped);
    if (stopped) return {out, true};
  }
  return {out + m.Flush(), false};
}

TEST(StopMatcher, StopTokens) {
  StopMatcher m({128009, 128001, 128008}, {});
  EXPECT_TRUE(m.IsStopToken(128001));
  EXPECT_TRUE(m.IsStopToken(128009));
  EXPECT_FALSE(m.IsStopToken(128000));
  EXPECT_FALSE(m.IsStopToken(0));
}

TEST(StopMatcher, StopStringSplitAcrossPushes) {
  StopMatcher m({}, {"</answer>"});
  bool stopped = true;
  EXPECT_EQ(m.Push("The result is 4", &stopped), "The result is 4");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(m.Push(".</", &stopped), ".");
  EXPECT_EQ(m.held_bytes(), 2u);
  EXPECT_EQ(m.Push("ans", &stopped), "");
  EXPECT_EQ(m.Push("wer", &stopped), "");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(m.Push("> trailing", &stopped), "");
  EXPECT_TRUE(stopped);
  EXPECT_EQ(m.Push("more", &stopped), "");
  EXPECT_TRUE(stopped);
  EXPECT_EQ(m.Flush(), "");
}

TEST(StopMatcher, PartialPrefixIsReleased) {
  StopMatcher m({}, {"STOP"});
  bool stopped = false;
  EXPECT_EQ(m.Push("a ST", &stopped), "a ");
  EXPECT_EQ(m.Push("O", &stopped), "");
  EXPECT_EQ(m.Push("P", &stopped), "");  // completes: nothing of it is emitted
  EXPECT_TRUE(stopped);

  StopMatcher n({}, {"STOP"});
  EXPECT_EQ(n.Push("a STO", &stopped), "a ");
  EXPECT_EQ(n.Push("RM", &stopped), "STORM");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(n.Push("S", &stopped), "");
  EXPECT_EQ(n.Push("ST", &stopped), "S");  // "SST": only the last "ST" can still start a stop
  EXPECT_EQ(n.Flush(), "ST");              // the end of generation releases it
  EXPECT_EQ(n.Flush(), "");
}

TEST(StopMatcher, MultipleAndOverlappingStops) {
  {
    StopMatcher m({}, {"\nUser:", "###"});
    EXPECT_EQ(Feed(m, {"Hi", " #", "# no", "\nUs", "er:", "x"}),
              std::make_pair(std::string("Hi ## no"), true));
  }
  {
    StopMatcher m({}, {"ab", "b"});  // "a" is held for "ab"; a lone "b" stops too
    bool stopped = false;
    EXPECT_EQ(m.Push("xa", &stopped), "x");
    EXPECT_EQ(m.Push("b", &stopped), "");
    EXPECT_TRUE(stopped);
    StopMatcher n({}, {"ab", "b"});
    EXPECT_EQ(Feed(n, {"cb"}), std::make_pair(std::string("c"), true));
    StopMatcher o({}, {"ab", "b"});
    EXPECT_EQ(Feed(o, {"xa", "c"}), std::make_pair(std::string("xac"), false));
  }
  // The stop that completes first wins, however the text is split.
  for (const auto& pieces : std::vector<std::vector<std::string>>{
           {"xabcd"}, {"x", "a", "b", "c", "d"}, {"xa", "bcd"}, {"xab", "cd"}}) {
    StopMatcher m({}, {"abcd", "bc"});
    EXPECT_EQ(Feed(m, pieces), std::make_pair(std::string("xa"), true)) << pieces.size();
  }
  // Same end: the longer stop (earlier start) wins.
  StopMatcher m({}, {"c", "abc"});
  EXPECT_EQ(Feed(m, {"zab", "c"}), std::make_pair(std::string("z"), true));
  // Empty stop strings are ignored.
  StopMatcher e({}, {"", "!"});
  EXPECT_EQ(Feed(e, {"hey", "!"}), std::make_pair(std::string("hey"), true));
}

TEST(StopMatcher, Utf8Multibyte) {
  // "。" is E3 80 82, "終わり" is three 3-byte characters; "é" shares no bytes with them.
  StopMatcher m({}, {"終わり", "。\n"});
  bool stopped = false;
  std::string out = m.Push("café 東京", &stopped);
  out += m.Push("。", &stopped);  // held: could start "。\n"
  EXPECT_EQ(out, "café 東京");
  out += m.Push("終", &stopped);
  EXPECT_EQ(out, "café 東京。");
  out += m.Push("点", &stopped);
  EXPECT_EQ(out, "café 東京。終点");
  out += m.Push("終わ", &stopped);
  out += m.Push("り🙂", &stopped);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(out, "café 東京。終点");

  StopMatcher n({}, {"🙂🙂"});
  EXPECT_EQ(Feed(n, {"a🙂", "b🙂", "🙂c"}), std::make_pair(std::string("a🙂b"), true));
  StopMatcher f({}, {"终了"});
  EXPECT_EQ(Feed(f, {"ok ", "终"}), std::make_pair(std::string("ok 终"), false));  // via Flush
}

}  // namespace
}  // namespace herd
