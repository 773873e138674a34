// ForwardBatch (continuous batching): several sequences in one pass give, row for row, exactly the
// logits and KV cache contents that Forward on each sequence alone gives — in prefill, in decode
// steps at different depths, in mixed steps whose rows span chunks, for several weight and cache
// dtypes — and bad input is rejected before any cache changes.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "model/forward.h"
#include "model/init.h"
#include "model/load.h"

namespace herd {
namespace {

constexpr int kVocab = 512;

LlamaConfig Tiny() {
  LlamaConfig c = *PresetConfig("tiny");
  c.vocab_size = kVocab;  // keeps the tests fast; shapes otherwise as the preset
  c.bos_id = 1, c.eos_ids = {2};
  return c;
}

Model MakeModel(DType dtype = DType::kF32, uint64_t seed = 1) {
  Model m;
  m.config = Tiny();
  auto w = InitRandomWeights(m.config, dtype, seed, nullptr);
  EXPECT_TRUE(w.ok()) << w.status().message();
  m.weights = std::move(*w);
  m.rope_inv_freq = RopeInverseFrequencies(m.config);
  return m;
}

std::vector<int> Tokens(int n, int salt) {
  std::vector<int> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 37 + salt * 101 + 11) % kVocab;
  return t;
}

// Bitwise equality of n floats at a and b; names the first difference.
void ExpectSameBits(const float* a, const float* b, size_t n, const std::string& what) {
  if (std::memcmp(a, b, n * sizeof(float)) == 0) return;
  for (size_t i = 0; i < n; ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      ADD_FAILURE() << what << ": first difference at " << i << ": " << a[i] << " vs " << b[i];
      return;
    }
  }
}

// Same size and the same bytes of keys and values in every layer.
void ExpectSameCache(const KVCache& a, const KVCache& b, int n_layers, int n_kv_heads,
                     const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  ASSERT_EQ(a.dtype(), b.dtype()) << what;
  for (int l = 0; l < n_layers; ++l) {
    const kernels::KVRows ra = a.Rows(l), rb = b.Rows(l);
    const uint64_t eb = Info(a.dtype()).block_bytes;
    // Position-major: one run of size() rows; head-major: one run per kv head.
    const int runs = ra.head_stride ? n_kv_heads : 1;
    const size_t bytes = static_cast<size_t>(a.size()) * ra.stride * eb;
    // Blocked keys: whole 16-position blocks (positions past size() are zeros in both).
    constexpr int kB = kernels::KVRows::kKeyBlock;
    const size_t k_bytes =
        ra.k_blocked ? static_cast<size_t>((a.size() + kB - 1) / kB * kB) * ra.stride * eb : bytes;
    ASSERT_EQ(ra.k_blocked, rb.k_blocked) << what;
    for (int h = 0; h < runs; ++h) {
      const size_t oa = ra.head_stride * h * eb, ob = rb.head_stride * h * eb;
      EXPECT_EQ(std::memcmp(static_cast<const uint8_t*>(ra.k) + oa,
                            static_cast<const uint8_t*>(rb.k) + ob, k_bytes),
                0)
          << what << " layer " << l << " keys, kv head " << h;
      EXPECT_EQ(std::memcmp(static_cast<const uint8_t*>(ra.v) + oa,
                            static_cast<const uint8_t*>(rb.v) + ob, bytes),
                0)
          << what << " layer " << l << " values, kv head " << h;
    }
  }
}

// Runs `seqs` batched on `batched` caches and one by one (Forward) on `single` caches (the same
// contents before the step), and expects the same logits and caches. want[i]: sequence i wants
// logits.
void ExpectBatchEqualsSingles(const Model& m, const std::vector<std::vector<int>>& tokens,
                              const std::vector<bool>& want, std::vector<KVCache>* batched,
                              std::vector<KVCache>* single, ThreadPool* batch_pool,
                              ThreadPool* single_pool, const std::string& what) {
  std::vector<BatchSeq> seqs;
  for (size_t i = 0; i < tokens.size(); ++i) seqs.push_back({tokens[i], &(*batched)[i], want[i]});
  std::vector<float> logits;
  const Status st = ForwardBatch(m, seqs, &logits, batch_pool);
  ASSERT_TRUE(st.ok()) << st.message();
  size_t row = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::vector<float> one;
    ASSERT_TRUE(Forward(m, tokens[i], &(*single)[i], false, &one, single_pool).ok());
    ASSERT_EQ(one.size(), static_cast<size_t>(kVocab));
    if (want[i]) {
      ASSERT_GE(logits.size(), (row + 1) * kVocab) << what;
      ExpectSameBits(&logits[row * kVocab], one.data(), kVocab,
                     what + " sequence " + std::to_string(i));
      ++row;
    }
    ExpectSameCache((*batched)[i], (*single)[i], m.config.n_layers, m.config.n_kv_heads,
                    what + " cache " + std::to_string(i));
  }
  EXPECT_EQ(logits.size(), row * kVocab) << what;
}

std::vector<KVCache> Caches(const Model& m, int n, int capacity, DType dtype = DType::kF16) {
  std::vector<KVCache> caches;
  for (int i = 0; i < n; ++i) caches.emplace_back(m.config, capacity, dtype);
  return caches;
}

TEST(ForwardBatch, PrefillOfThreeSequencesEqualsSeparateForwards) {
  const Model m = MakeModel();
  ThreadPool pool(2);
  for (ThreadPool* p : {&pool, static_cast<ThreadPool*>(nullptr)}) {
    const std::string what = p ? "pool" : "no pool";
    auto batched = Caches(m, 3, 64), single = Caches(m, 3, 64);
    const std::vector<std::vector<int>> prompts = {Tokens(5, 1), Tokens(17, 2), Tokens(40, 3)};
    ExpectBatchEqualsSingles(m, prompts, {true, true, true}, &batched, &single, p, &pool,
                             what + " prefill");
    // A step where the middle sequence wants no logits: rows [2, vocab] in order.
    ExpectBatchEqualsSingles(m, {Tokens(3, 4), Tokens(1, 5), Tokens(2, 6)}, {true, false, true},
                             &batched, &single, p, nullptr, what + " second step");
  }
}

class DecodeSteps : public ::testing::TestWithParam<std::tuple<DType, DType>> {};

TEST_P(DecodeSteps, BatchedEqualsOneAtATime) {
  const auto [weights, cache_dtype] = GetParam();
  const Model m = MakeModel(weights, 7);
  ThreadPool pool(2);
  auto batched = Caches(m, 4, 96, cache_dtype), single = Caches(m, 4, 96, cache_dtype);
  // Different depths: each prompt prefilled alone into both caches (the same contents).
  const int depths[] = {3, 10, 25, 60};
  for (int i = 0; i < 4; ++i) {
    std::vector<float> ignored;
    ASSERT_TRUE(Forward(m, Tokens(depths[i], 10 + i), &batched[i], false, &ignored, &pool).ok());
    ASSERT_TRUE(Forward(m, Tokens(depths[i], 10 + i), &single[i], false, &ignored, &pool).ok());
  }
  for (int step = 0; step < 6; ++step) {
    const std::string what = std::string(Name(weights)) + " weights, " +
                             std::string(Name(cache_dtype)) + " cache, step " +
                             std::to_string(step);
    if (step == 3) {
      // Three of the four (the batch rows then sit differently in the matmuls' 4-row tiles).
      std::vector<KVCache> b3, s3;
      std::vector<std::vector<int>> tokens = {
          {(step * 13 + 1) % kVocab}, {(step * 13 + 2) % kVocab}, {(step * 13 + 4) % kVocab}};
      std::vector<BatchSeq> seqs = {{tokens[0], &batched[0], true},
                                    {tokens[1], &batched[1], true},
                                    {tokens[2], &batched[3], true}};
      std::vector<float> logits;
      ASSERT_TRUE(ForwardBatch(m, seqs, &logits, &pool).ok());
      ASSERT_EQ(logits.size(), 3u * kVocab);
      const int which[] = {0, 1, 3};
      for (int r = 0; r < 3; ++r) {
        std::vector<float> one;
        ASSERT_TRUE(Forward(m, tokens[r], &single[which[r]], false, &one, nullptr).ok());
        ExpectSameBits(&logits[r * kVocab], one.data(), kVocab, what + " row " + std::to_string(r));
      }
      continue;
    }
    std::vector<std::vector<int>> tokens;
    for (int i = 0; i < 4; ++i) tokens.push_back({(step * 13 + i * 5 + 1) % kVocab});
    ExpectBatchEqualsSingles(m, tokens, {true, true, true, true}, &batched, &single, &pool, nullptr,
                             what);
  }
  for (int i = 0; i < 4; ++i)
    ExpectSameCache(batched[i], single[i], m.config.n_layers, m.config.n_kv_heads, "final");
}

INSTANTIATE_TEST_SUITE_P(WeightsAndCaches, DecodeSteps,
                         ::testing::Combine(::testing::Values(DType::kF32, DType::kF16,
                                                              DType::kQ8_0, DType::kQ4_0),
                                            ::testing::Values(DType::kF16, DType::kF32)),
                         [](const auto& info) {
                           return std::string(Name(std::get<0>(info.param))) + "_cache_" +
                                  std::string(Name(std::get<1>(info.param)));
                         });

TEST(ForwardBatch, MixedDecodeAndPrefillAcrossChunksEqualsSeparateForwards) {
  for (const DType weights : {DType::kF32, DType::kQ8_0}) {
    const Model m = MakeModel(weights, 3);
    ThreadPool pool(2);
    auto batched = Caches(m, 4, 400), single = Caches(m, 4, 400);
    const int depths[] = {7, 2, 20, 0};
    for (int i = 0; i < 4; ++i) {
      if (depths[i] == 0) continue;
      std::vector<float> ignored;
      ASSERT_TRUE(Forward(m, Tokens(depths[i], 20 + i), &batched[i], false, &ignored, &pool).ok());
      ASSERT_TRUE(Forward(m, Tokens(depths[i], 20 + i), &single[i], false, &ignored, &pool).ok());
    }
    // 1 + 300 + 1 + 5 rows: chunk one holds sequence 0 and 255 rows of sequence 1, chunk two
    // the other 45 and sequences 2 and 3 (Forward alone splits sequence 1 as 256 + 44).
    const std::string what = std::string(Name(weights)) + " mixed";
    ExpectBatchEqualsSingles(m, {{5}, Tokens(300, 30), {9}, Tokens(5, 31)},
                             {true, true, true, true}, &batched, &single, &pool, &pool, what);
    // Then decode all four together, and a step whose prefill wants no logits.
    ExpectBatchEqualsSingles(m, {{6}, {7}, {8}, {9}}, {true, true, true, true}, &batched, &single,
                             &pool, nullptr, what + " decode");
    ExpectBatchEqualsSingles(m, {{6}, Tokens(70, 32), {8}, {9}}, {true, false, true, true},
                             &batched, &single, nullptr, &pool, what + " second prefill");
  }
}

TEST(ForwardBatch, AllLogitsOfForwardMatchOneRowSequences) {
  // Forward's all_logits rows come from the same rows of the same pass: each equals the logits
  // of a batch that ends at that token.
  const Model m = MakeModel();
  ThreadPool pool(2);
  const auto tokens = Tokens(12, 40);
  KVCache a(m.config, 16), b(m.config, 16);
  std::vector<float> all;
  ASSERT_TRUE(Forward(m, tokens, &a, true, &all, &pool).ok());
  ASSERT_EQ(all.size(), 12u * kVocab);
  for (int i = 0; i < 12; ++i) {
    const BatchSeq seq{std::span(tokens).subspan(i, 1), &b, true};
    std::vector<float> one;
    ASSERT_TRUE(ForwardBatch(m, {&seq, 1}, &one, &pool).ok());
    // Positions earlier in the same chunk vs earlier steps: the same keys either way.
    ExpectSameBits(&all[i * kVocab], one.data(), kVocab, "token " + std::to_string(i));
  }
  ExpectSameCache(a, b, m.config.n_layers, m.config.n_kv_heads, "all_logits");
}

TEST(ForwardBatch, BadInputIsAnErrorAndChangesNoCache) {
  const Model m = MakeModel();
  auto caches = Caches(m, 3, 8);
  std::vector<float> ignored;
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(Forward(m, Tokens(i + 1, i), &caches[i], false, &ignored, nullptr).ok());
  auto sizes = [&] {
    return std::vector<int>{caches[0].size(), caches[1].size(), caches[2].size()};
  };
  const std::vector<int> before = sizes();
  const std::vector<int> ok = {3, 4}, bad = {1, kVocab}, negative = {-1}, six = Tokens(6, 9);
  auto expect_error = [&](std::vector<BatchSeq> seqs, const std::string& text) {
    std::vector<float> logits;
    const Status st = ForwardBatch(m, seqs, &logits, nullptr);
    EXPECT_FALSE(st.ok()) << text;
    EXPECT_NE(st.message().find(text), std::string::npos) << st.message();
    EXPECT_EQ(sizes(), before) << text;
  };
  // The bad sequence last, so the earlier ones would have run if checks were not done first.
  expect_error({{ok, &caches[0], true}, {bad, &caches[1], true}},
               "sequence 1: token 512 (at index 1) is out of range");
  expect_error({{ok, &caches[0], true}, {negative, &caches[1], true}}, "token -1");
  // caches[2] holds 3 of 8 positions: 6 more overflow.
  expect_error({{ok, &caches[0], true}, {ok, &caches[1], false}, {six, &caches[2], true}},
               "sequence 2: context full");
  expect_error({{ok, &caches[0], true}, {ok, &caches[1], true}, {ok, &caches[0], true}},
               "share a KV cache");
  expect_error({{ok, &caches[0], true}, {{}, &caches[1], true}}, "no tokens");
  expect_error({{ok, &caches[0], true}, {ok, nullptr, true}}, "no KV cache");
  // An empty batch runs nothing.
  std::vector<float> logits(3);
  EXPECT_TRUE(ForwardBatch(m, {}, &logits, nullptr).ok());
  EXPECT_TRUE(logits.empty());
  EXPECT_EQ(sizes(), before);
}

}  // namespace
}  // namespace herd
