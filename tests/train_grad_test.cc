// The training gradients (train/backward.h) against an independent float64 PyTorch autograd
// reference (tools/gen_train_goldens.py: GQA, tied embeddings with MQA and ignored targets, llama3
// RoPE scaling), against finite differences, and for their invariants: the same bits whatever the
// thread count, batches that span forward chunks, gradient accumulation, and packed rows whose
// documents compute exactly what they compute as separate sequences.
//
// Error measure: per tensor, the relative L2 (Frobenius) error ||g - g_ref|| / ||g_ref||; the loss
// by |loss - loss_ref| / |loss_ref|. Both must be below 1e-4. Float32 activations and weights
// against float64 give errors of order 1e-7 to 1e-6; a wrong term in any backward op gives O(1).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "io/safetensors.h"
#include "kernels/backward.h"
#include "model/forward.h"
#include "model/init.h"
#include "model/names.h"
#include "train/backward.h"
#include "train/grads.h"
#include "train_test_util.h"

namespace herd {
namespace {

using testing::ConfigFromGolden;
using testing::FormulaWeights;

Model MakeModel(const LlamaConfig& c, uint64_t seed) {
  auto m = MakeTrainableModel(c, FormulaWeights(c, seed), nullptr);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return std::move(*m);
}

double RelativeL2(const float* a, const float* ref, int64_t n) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < n; ++i) {
    diff += (static_cast<double>(a[i]) - ref[i]) * (static_cast<double>(a[i]) - ref[i]);
    norm += static_cast<double>(ref[i]) * ref[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

TEST(TrainGrad, MatchesPytorchFloat64) {
  const nlohmann::json golden = testing::LoadTrainGolden();
  ASSERT_EQ(golden["variants"].size(), 3u);
  ThreadPool pool(2);
  for (const auto& v : golden["variants"]) {
    const std::string name = v["name"];
    SCOPED_TRACE(name);
    const LlamaConfig c = ConfigFromGolden(v["config"]);
    const Model model = MakeModel(c, v["weights_seed"]);
    const std::vector<int> tokens = v["tokens"], targets = v["targets"];
    const TokenBatch batch{v["batch"], v["seq_len"], tokens, targets};
    int64_t count = 0;
    for (int t : targets) count += t >= 0;
    LlamaGrads grads = MakeGrads(c);
    auto loss = ForwardBackward(model, batch, 1.0f / count, &grads, &pool);
    ASSERT_TRUE(loss.ok()) << loss.status().message();
    ASSERT_EQ(loss->count, count);
    const double ref_loss = v["loss"];
    const double loss_err = std::abs(loss->mean() - ref_loss) / std::abs(ref_loss);
    EXPECT_LT(loss_err, 1e-4) << loss->mean() << " vs " << ref_loss;

    auto ref =
        LoadSafetensors(testing::SourcePath("tests/golden/" + v["grads"].get<std::string>()));
    ASSERT_TRUE(ref.ok()) << ref.status().message();
    double worst = 0;
    std::string worst_name;
    int n_tensors = 0;
    ForEachTensor(grads, [&](TensorId id, const GradTensor& g) {
      const std::string tname = TensorName(NamingScheme::kMeta, id);
      const TensorEntry* e = ref->Find(tname);
      ASSERT_NE(e, nullptr) << tname;
      ASSERT_EQ(e->dtype, DType::kF32);
      ASSERT_EQ(e->shape, g.shape) << tname;
      const double err = RelativeL2(g.f32(), reinterpret_cast<const float*>(e->data), g.numel());
      EXPECT_LT(err, 1e-4) << tname;
      if (err > worst) worst = err, worst_name = tname;
      ++n_tensors;
    });
    EXPECT_EQ(static_cast<size_t>(n_tensors), ref->size());
    std::printf(
        "%s: loss %.9f (ref %.9f, rel err %.2e), %d gradients, worst rel L2 err %.2e (%s)\n",
        name.c_str(), loss->mean(), ref_loss, loss_err, n_tensors, worst, worst_name.c_str());
  }
}

// Central differences of the float32 loss against the analytic gradient, at the largest-gradient
// element of every tensor. Step 1e-3 on weights of ~0.2: truncation error ~1e-6, float32 rounding
// of the loss (~1e-7 of 4) divided by the step ~1e-4 absolute.
TEST(TrainGrad, FiniteDifferences) {
  const nlohmann::json golden = testing::LoadTrainGolden();
  for (const auto& v : golden["variants"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    const LlamaConfig c = ConfigFromGolden(v["config"]);
    Model model = MakeModel(c, v["weights_seed"]);
    const std::vector<int> tokens = v["tokens"], targets = v["targets"];
    const TokenBatch batch{v["batch"], v["seq_len"], tokens, targets};
    LlamaGrads grads = MakeGrads(c);
    auto loss = ForwardBackward(model, batch, 1.0f, &grads, nullptr);  // gradient of the sum
    ASSERT_TRUE(loss.ok());
    std::vector<Weight*> weights;
    ForEachTensor(model.weights, [&](TensorId, Weight& w) { weights.push_back(&w); });
    size_t i = 0;
    int checked = 0;
    ForEachTensor(grads, [&](TensorId id, const GradTensor& g) {
      float* w = MutableF32(*weights[i++]);
      int64_t at = 0;
      for (int64_t j = 0; j < g.numel(); ++j)
        if (std::abs(g.data[j]) > std::abs(g.data[at])) at = j;
      const float saved = w[at], h = 1e-3f;
      w[at] = saved + h;
      const double up = ForwardLoss(model, batch, nullptr)->sum;
      w[at] = saved - h;
      const double down = ForwardLoss(model, batch, nullptr)->sum;
      w[at] = saved;
      const double fd = (up - down) / ((saved + h) - (saved - h));
      EXPECT_NEAR(fd, g.data[at], 2e-3 * std::abs(g.data[at]) + 5e-4)
          << TensorName(NamingScheme::kMeta, id) << "[" << at << "]";
      ++checked;
    });
    EXPECT_GE(checked, 20);
  }
}

LlamaConfig SmallConfig() {
  LlamaConfig c = *PresetConfig("tiny");  // dim 64, 2 layers, 4 heads / 2 kv, llama3 scaling
  c.vocab_size = 96;
  c.bos_id = 1, c.eos_ids = {2};
  return c;
}

std::vector<int> Tokens(int n, int salt, int vocab) {
  std::vector<int> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 37 + salt * 101 + (i * i) % 13) % vocab;
  return t;
}

void ExpectSameBits(const LlamaGrads& a, const LlamaGrads& b) {
  std::vector<const GradTensor*> bs;
  ForEachTensor(b, [&](TensorId, const GradTensor& t) { bs.push_back(&t); });
  size_t i = 0;
  ForEachTensor(a, [&](TensorId id, const GradTensor& t) {
    EXPECT_EQ(std::memcmp(t.f32(), bs[i++]->f32(), t.numel() * sizeof(float)), 0)
        << TensorName(NamingScheme::kMeta, id);
  });
}

double WorstRelativeL2(const LlamaGrads& a, const LlamaGrads& ref) {
  std::vector<const GradTensor*> rs;
  ForEachTensor(ref, [&](TensorId, const GradTensor& t) { rs.push_back(&t); });
  size_t i = 0;
  double worst = 0;
  ForEachTensor(a, [&](TensorId, const GradTensor& t) {
    worst = std::max(worst, RelativeL2(t.f32(), rs[i++]->f32(), t.numel()));
  });
  return worst;
}

// 3 sequences of 100 tokens: 300 rows, more than one forward chunk (256 rows). The gradient is
// bit-identical with 1 and 3 threads, the loss equals ForwardLoss's bit for bit, and it matches the
// sum of the three sequences run alone (up to float32 summation order).
TEST(TrainGrad, DeterministicAcrossThreadsAndChunks) {
  const LlamaConfig c = SmallConfig();
  const Model model = MakeModel(c, 5);
  const int batch = 3, seq_len = 100;
  const std::vector<int> stream = Tokens(batch * seq_len + 1, 1, c.vocab_size);
  const std::vector<int> inputs(stream.begin(), stream.end() - 1);
  const std::vector<int> targets(stream.begin() + 1, stream.end());
  const TokenBatch b{batch, seq_len, inputs, targets};
  ThreadPool one(1), three(3);
  LlamaGrads g1 = MakeGrads(c), g3 = MakeGrads(c), parts = MakeGrads(c);
  auto l1 = ForwardBackward(model, b, 1.0f / 300, &g1, &one);
  auto l3 = ForwardBackward(model, b, 1.0f / 300, &g3, &three);
  ASSERT_TRUE(l1.ok() && l3.ok());
  EXPECT_EQ(l1->sum, l3->sum);
  ExpectSameBits(g1, g3);
  auto lf = ForwardLoss(model, b, &three);
  ASSERT_TRUE(lf.ok());
  EXPECT_EQ(lf->sum, l1->sum);
  double sum = 0;
  for (int i = 0; i < batch; ++i) {
    const std::span<const int> in(inputs), tg(targets);
    const TokenBatch one_seq{1, seq_len, in.subspan(i * seq_len, seq_len),
                             tg.subspan(i * seq_len, seq_len)};
    auto l = ForwardBackward(model, one_seq, 1.0f / 300, &parts, &three);  // accumulates
    ASSERT_TRUE(l.ok());
    sum += l->sum;
  }
  EXPECT_NEAR(sum, l1->sum, 1e-9 * l1->sum);
  EXPECT_LT(WorstRelativeL2(parts, g1), 1e-5);
}

// With overwrite, ForwardBackward writes the gradient without reading the old contents (here NaN):
// the bits of adding it to zeros, tied or not; later calls without it add as before.
TEST(TrainGrad, OverwriteEqualsAddingToZeros) {
  for (bool tied : {false, true}) {
    LlamaConfig c = SmallConfig();
    c.tie_word_embeddings = tied;
    const Model model = MakeModel(c, 7);
    const int batch = 2, seq_len = 40;
    const std::vector<int> stream = Tokens(batch * seq_len + 1, 3, c.vocab_size);
    const std::vector<int> inputs(stream.begin(), stream.end() - 1);
    const std::vector<int> targets(stream.begin() + 1, stream.end());
    const TokenBatch b{batch, seq_len, inputs, targets};
    ThreadPool pool(2);
    LlamaGrads added = MakeGrads(c), written = MakeGrads(c);
    ForEachTensor(written, [](TensorId, GradTensor& t) {
      std::fill(t.data.begin(), t.data.end(), std::nanf(""));
    });
    ASSERT_TRUE(ForwardBackward(model, b, 0.01f, &added, &pool).ok());
    ASSERT_TRUE(ForwardBackward(model, b, 0.01f, &written, &pool, /*overwrite=*/true).ok());
    ExpectSameBits(added, written);
    ASSERT_TRUE(ForwardBackward(model, b, 0.01f, &added, &pool).ok());
    ASSERT_TRUE(ForwardBackward(model, b, 0.01f, &written, &pool).ok());
    ExpectSameBits(added, written);
  }
}

// Packing (TokenBatch::doc_starts): documents A and B of 24 tokens packed into one row of 48, cut
// at 24, against the same 48 tokens and targets as two rows of 24. Bit for bit: the cut turns the
// packed row into exactly the two sequences the unpacked batch runs (same rows in the same order,
// each from position 0), and everything after the forward is per row or summed over rows in row
// order, so nothing is left that could round differently. Without the cut, B's tokens attend to A
// and sit at positions 24..47: a different loss and different gradients.
TEST(TrainGrad, PackedDocumentsEqualSeparateSequences) {
  const LlamaConfig c = SmallConfig();
  const Model model = MakeModel(c, 5);
  const int len = 24;
  std::vector<int> inputs = Tokens(len, 2, c.vocab_size), targets = Tokens(len, 4, c.vocab_size);
  const std::vector<int> b_in = Tokens(len, 3, c.vocab_size), b_tg = Tokens(len, 5, c.vocab_size);
  inputs.insert(inputs.end(), b_in.begin(), b_in.end());
  targets.insert(targets.end(), b_tg.begin(), b_tg.end());
  targets[5] = -1;  // an ignored position counts the same way in both
  const std::vector<std::vector<int>> starts = {{len}};
  const TokenBatch packed{1, 2 * len, inputs, targets, starts};
  const TokenBatch separate{2, len, inputs, targets};
  const TokenBatch unmasked{1, 2 * len, inputs, targets};
  ThreadPool pool(3);
  LlamaGrads gp = MakeGrads(c), gs = MakeGrads(c), gu = MakeGrads(c);
  auto lp = ForwardBackward(model, packed, 1.0f / 47, &gp, &pool);
  auto ls = ForwardBackward(model, separate, 1.0f / 47, &gs, &pool);
  auto lu = ForwardBackward(model, unmasked, 1.0f / 47, &gu, &pool);
  ASSERT_TRUE(lp.ok() && ls.ok() && lu.ok()) << lp.status().message();
  EXPECT_EQ(lp->count, 47);
  EXPECT_EQ(ls->count, 47);
  EXPECT_EQ(lp->sum, ls->sum);
  ExpectSameBits(gp, gs);
  EXPECT_EQ(ForwardLoss(model, packed, &pool)->sum, lp->sum);
  // The mask matters: B's 24 positions see different contexts unmasked.
  EXPECT_GT(std::abs(lu->sum - lp->sum), 1e-3 * lp->sum) << lu->sum << " vs " << lp->sum;
  EXPECT_GT(WorstRelativeL2(gu, gp), 1e-3);
}

// Documents of different lengths (5 + 11 and 7 + 9 tokens, in two rows of 16; a start at 16 = the
// row's last target cuts nothing). Each document's loss, alone, against the same document as a
// batch of its own: with targets only at the document's positions, the packed loss sums the same
// -log p in the same order plus exact zeros, so it is equal bit for bit, which holds only if the
// document's logits are its own (positions from 0, no attention to the other document); and
// against Forward (the inference path, float32 cache) within float rounding. The gradient of the
// packed batch against the four documents run one by one (accumulated): equal up to float32
// summation order. Packed ForwardLoss == ForwardBackward's loss bit for bit, and the gradient is
// the same with 1 and 3 threads.
TEST(TrainGrad, PackedDocumentsComputeWhatTheyComputeAlone) {
  const LlamaConfig c = SmallConfig();
  const Model model = MakeModel(c, 5);
  const int seq_len = 16;
  const std::vector<int> stream = Tokens(2 * seq_len + 1, 6, c.vocab_size);
  const std::vector<int> inputs(stream.begin(), stream.end() - 1);
  const std::vector<int> targets(stream.begin() + 1, stream.end());
  const std::vector<std::vector<int>> starts = {{5}, {7, 16}};
  struct Doc {
    int begin, n;  // flat index of the first token, tokens
  };
  const std::vector<Doc> docs = {{0, 5}, {5, 11}, {16, 7}, {23, 9}};
  ThreadPool one(1), three(3);

  std::vector<float> logits;
  for (const Doc& d : docs) {
    SCOPED_TRACE(d.begin);
    std::vector<int> only(targets.size(), -1);  // targets of this document only
    std::copy_n(targets.begin() + d.begin, d.n, only.begin() + d.begin);
    auto packed = ForwardLoss(model, {2, seq_len, inputs, only, starts}, &three);
    ASSERT_TRUE(packed.ok()) << packed.status().message();
    KVCache cache(c, d.n, DType::kF32);
    const std::span<const int> tokens(inputs.data() + d.begin, d.n);
    ASSERT_TRUE(Forward(model, tokens, &cache, /*all_logits=*/true, &logits, &three).ok());
    double inference = 0;
    for (int t = 0; t < d.n; ++t)
      inference += CrossEntropy(&logits[static_cast<size_t>(t) * c.vocab_size], c.vocab_size,
                                targets[d.begin + t], 0.0f, nullptr);
    // The document as its own one-row batch: the same training forward, bit for bit.
    const std::span<const int> doc_targets(targets.data() + d.begin, d.n);
    auto own = ForwardLoss(model, {1, d.n, tokens, doc_targets}, &three);
    ASSERT_TRUE(own.ok()) << own.status().message();
    const double alone = own->sum;
    EXPECT_EQ(packed->count, d.n);
    EXPECT_EQ(packed->sum, alone);
    // And the inference path (streaming attention kernel, not training's blocks) agrees to float
    // rounding.
    EXPECT_NEAR(packed->sum, inference, 1e-5 * inference);
    auto unmasked = ForwardLoss(model, {2, seq_len, inputs, only}, &three);
    if (d.begin % seq_len != 0)  // a row's first document is the same masked or not
      EXPECT_NE(unmasked->sum, alone);
    else
      EXPECT_EQ(unmasked->sum, alone);
  }

  const TokenBatch packed{2, seq_len, inputs, targets, starts};
  LlamaGrads g1 = MakeGrads(c), g3 = MakeGrads(c), parts = MakeGrads(c), gu = MakeGrads(c);
  auto l1 = ForwardBackward(model, packed, 1.0f / 32, &g1, &one);
  auto l3 = ForwardBackward(model, packed, 1.0f / 32, &g3, &three);
  ASSERT_TRUE(l1.ok() && l3.ok());
  EXPECT_EQ(l1->sum, l3->sum);
  ExpectSameBits(g1, g3);
  EXPECT_EQ(ForwardLoss(model, packed, nullptr)->sum, l1->sum);
  double sum = 0;
  for (const Doc& d : docs) {
    const TokenBatch alone{1, d.n, std::span(inputs).subspan(d.begin, d.n),
                           std::span(targets).subspan(d.begin, d.n)};
    auto l = ForwardBackward(model, alone, 1.0f / 32, &parts, &three);  // accumulates
    ASSERT_TRUE(l.ok());
    sum += l->sum;
  }
  EXPECT_NEAR(sum, l1->sum, 1e-9 * l1->sum);
  EXPECT_LT(WorstRelativeL2(parts, g1), 1e-5);
  ASSERT_TRUE(ForwardBackward(model, {2, seq_len, inputs, targets}, 1.0f / 32, &gu, &three).ok());
  EXPECT_GT(WorstRelativeL2(gu, g1), 1e-3);
}

TEST(TrainGrad, RejectsBadBatches) {
  const LlamaConfig c = SmallConfig();
  const Model model = MakeModel(c, 5);
  LlamaGrads g = MakeGrads(c);
  const std::vector<int> in = {1, 2, 3, 4}, bad_target = {2, 3, 4, 96}, short_t = {2, 3};
  EXPECT_FALSE(ForwardBackward(model, {1, 4, in, bad_target}, 1, &g, nullptr).ok());
  EXPECT_FALSE(ForwardBackward(model, {1, 4, in, short_t}, 1, &g, nullptr).ok());
  const std::vector<int> bad_in = {1, 2, 300, 4}, t = {2, 3, 4, 5};
  EXPECT_FALSE(ForwardBackward(model, {1, 4, bad_in, t}, 1, &g, nullptr).ok());
  // Document starts: one list per row, strictly increasing, in [1, seq_len].
  for (const std::vector<std::vector<int>>& starts :
       {std::vector<std::vector<int>>{{2}, {2}}, {{0}}, {{5}}, {{3, 2}}, {{2, 2}}}) {
    auto r = ForwardBackward(model, {1, 4, in, t, starts}, 1, &g, nullptr);
    EXPECT_FALSE(r.ok());
    EXPECT_FALSE(ForwardLoss(model, {1, 4, in, t, starts}, nullptr).ok());
  }
  const std::vector<std::vector<int>> fine = {{1, 3, 4}};
  EXPECT_TRUE(ForwardBackward(model, {1, 4, in, t, fine}, 1, &g, nullptr).ok());
  // Quantised weights are refused.
  Model q;
  q.config = c;
  q.weights = *InitRandomWeights(c, DType::kBF16, 1, nullptr);
  q.rope_inv_freq = RopeInverseFrequencies(c);
  EXPECT_FALSE(ForwardBackward(q, {1, 4, in, t}, 1, &g, nullptr).ok());
}

// MatMulBackward (MatMul's kernels on transposed copies) against double loops, on fresh random
// shapes that are not multiples of any tile; dw accumulates onto what it held, and dx too when
// asked (accumulate_dx).
TEST(TrainGrad, MatMulBackwardMatchesScalarReference) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  ThreadPool pool(3);
  for (auto [m, n, k, acc] : {std::tuple{1, 1, 1, false},
                              {37, 29, 53, false},
                              {70, 130, 9, true},
                              {5, 300, 64, false},
                              {37, 29, 53, true}}) {
    std::vector<float> w(n * k), x(m * k), dy(m * n), dx(m * k), dx0(m * k), dw(n * k), dw0(n * k);
    for (auto* v : {&w, &x, &dy, &dw0, &dx0})
      std::generate(v->begin(), v->end(), [&] { return u(rng); });
    dw = dw0, dx = dx0;
    kernels::MatMulBackward(kernels::MakeMatView(DType::kF32, n, k, w.data()), x.data(), dy.data(),
                            m, dx.data(), dw.data(), &pool, acc);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < k; ++j) {
        double ref = acc ? dx0[i * k + j] : 0, mag = acc;
        for (int r = 0; r < n; ++r) ref += double{dy[i * n + r]} * w[r * k + j], mag += 1;
        EXPECT_NEAR(dx[i * k + j], ref, 1e-5 * mag) << m << "x" << n << "x" << k << " " << acc;
      }
    }
    for (int r = 0; r < n; ++r) {
      for (int j = 0; j < k; ++j) {
        double ref = dw0[r * k + j];
        for (int i = 0; i < m; ++i) ref += double{dy[i * n + r]} * x[i * k + j];
        EXPECT_NEAR(dw[r * k + j], ref, 1e-5 * (m + 1)) << m << "x" << n << "x" << k;
      }
    }
  }
}

TEST(TrainGrad, CrossEntropyByHand) {
  // logits (0, ln 2, ln 5): softmax (1/8, 2/8, 5/8); -log p[1] = ln 4.
  const float logits[3] = {0.0f, std::log(2.0f), std::log(5.0f)};
  float d[3];
  EXPECT_NEAR(CrossEntropy(logits, 3, 1, 2.0f, d), std::log(4.0), 1e-7);
  EXPECT_NEAR(d[0], 2.0 / 8, 1e-7);
  EXPECT_NEAR(d[1], 2.0 * (2.0 / 8 - 1), 1e-7);
  EXPECT_NEAR(d[2], 2.0 * 5 / 8, 1e-7);
  EXPECT_EQ(CrossEntropy(logits, 3, -1, 1.0f, d), 0.0);
  EXPECT_EQ(d[0], 0.0f);
}

}  // namespace
}  // namespace herd
