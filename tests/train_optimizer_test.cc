// The optimizer (train/optimizer.h): schedule, clipping and AdamW by hand, against
// torch.optim.AdamW + clip_grad_norm_ (tools/gen_train_goldens.py), and three full training steps
// of a tiny model against the float64 PyTorch run; gradient accumulation over micro-batches.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "train/backward.h"
#include "train/grads.h"
#include "train/optimizer.h"
#include "train_test_util.h"

namespace herd {
namespace {

TEST(TrainOptimizer, ScheduleByHand) {
  const LrSchedule s{1.0, 2, 6, 0.1};
  EXPECT_DOUBLE_EQ(s.At(0), 0.5);  // warmup: (step + 1) / 2
  EXPECT_DOUBLE_EQ(s.At(1), 1.0);
  EXPECT_DOUBLE_EQ(s.At(2), 1.0);                     // cosine from the peak...
  EXPECT_NEAR(s.At(4), 0.1 + 0.45 * (1 + 0), 1e-15);  // ...half way: cos(pi / 2) = 0
  EXPECT_NEAR(s.At(6), 0.1, 1e-15);                   // ...to the floor, and stays there
  EXPECT_NEAR(s.At(100), 0.1, 1e-15);
  const LrSchedule none{2.0, 0, 1, 0.5};
  EXPECT_DOUBLE_EQ(none.At(0), 2.0);
}

TEST(TrainOptimizer, ClipByHand) {
  std::vector<float> w = {0, 0}, g = {3, 4};
  const ParamRef p[] = {{&w[0], &g[0], 1, true}, {&w[1], &g[1], 1, false}};
  EXPECT_DOUBLE_EQ(GradNorm(p), 5.0);
  EXPECT_DOUBLE_EQ(ClipCoefficient(5.0, 10.0), 1.0);  // under the limit: unchanged
  EXPECT_NEAR(ClipCoefficient(5.0, 1.0), 0.2, 1e-7);  // 1 / (5 + 1e-6)
}

// First step: m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps) = lr * sign(g), after
// the decay w *= 1 - lr * wd on decayed tensors.
TEST(TrainOptimizer, AdamWFirstStepByHand) {
  std::vector<float> w = {2.0f, 2.0f, -1.0f}, g = {0.5f, 0.5f, -3.0f};
  const ParamRef p[] = {{&w[0], &g[0], 1, true}, {&w[1], &g[1], 2, false}};
  AdamW opt;
  opt.Step(p, 0.1, nullptr);
  EXPECT_NEAR(w[0], 2.0 * (1 - 0.1 * 0.1) - 0.1, 1e-6);
  EXPECT_NEAR(w[1], 2.0 - 0.1, 1e-6);
  EXPECT_NEAR(w[2], -1.0 + 0.1, 1e-6);
  EXPECT_EQ(opt.steps(), 1);
  EXPECT_NEAR(opt.m()[1][1], 0.1 * -3.0, 1e-7);
  EXPECT_NEAR(opt.v()[1][1], 0.05 * 9.0, 1e-6);
}

TEST(TrainOptimizer, MatchesTorchAdamW) {
  const nlohmann::json a = testing::LoadTrainGolden()["adamw"];
  const uint64_t seed = a["seed"];
  std::vector<float> mat = testing::FormulaTensor(seed, 0, {6, 8});
  std::vector<float> vec = testing::FormulaTensor(seed, 1, {8});
  AdamW opt({a["beta1"], a["beta2"], a["eps"], a["weight_decay"]});
  const LrSchedule sched{a["lr"], a["warmup"], a["steps"], a["min_lr_ratio"]};
  for (int step = 0; step < a["steps"].get<int>(); ++step) {
    std::vector<float> gm = testing::FormulaTensor(seed, 2 + 2 * step, {6, 8});
    std::vector<float> gv = testing::FormulaTensor(seed, 3 + 2 * step, {8});
    for (float& x : gv) x -= 1.0f;  // exact: the formula's vectors are 1 + u / 4
    const ParamRef p[] = {{mat.data(), gm.data(), 48, true}, {vec.data(), gv.data(), 8, false}};
    // As the trainer: the norm, then the update with clipping's factor.
    const double norm = GradNorm(p);
    EXPECT_NEAR(norm, a["norms"][step].get<double>(), 1e-6 * norm);
    const double lr = sched.At(step);
    EXPECT_NEAR(lr, a["lrs"][step].get<double>(), 1e-15);
    opt.Step(p, lr, nullptr, static_cast<float>(ClipCoefficient(norm, a["clip"])));
  }
  double worst = 0;
  for (int i = 0; i < 48; ++i)
    worst = std::max(worst, std::abs(mat[i] - a["matrix"][i].get<double>()));
  for (int i = 0; i < 8; ++i)
    worst = std::max(worst, std::abs(vec[i] - a["vector"][i].get<double>()));
  EXPECT_LT(worst, 1e-6);  // float32 master weights of size ~0.3 to 1.2: rounding ~1e-7
  std::printf("AdamW vs torch: max abs parameter difference after 5 steps %.2e\n", worst);
}

// Three steps (forward, backward, clip, AdamW) of variant gqa: the losses before each step match
// the float64 PyTorch run.
TEST(TrainOptimizer, TrainingStepsMatchTorch) {
  const nlohmann::json golden = testing::LoadTrainGolden();
  const nlohmann::json s = golden["train_steps"];
  const nlohmann::json& v = golden["variants"][0];
  ASSERT_EQ(v["name"], s["variant"]);
  const LlamaConfig c = testing::ConfigFromGolden(v["config"]);
  auto model = MakeTrainableModel(c, testing::FormulaWeights(c, v["weights_seed"]), nullptr);
  ASSERT_TRUE(model.ok());
  const std::vector<int> tokens = v["tokens"], targets = v["targets"];
  const TokenBatch batch{v["batch"], v["seq_len"], tokens, targets};
  LlamaGrads grads = MakeGrads(c);
  const std::vector<ParamRef> params = ParamRefs(model->weights, &grads);
  AdamW opt;
  const LrSchedule sched{s["lr"], s["warmup"], s["steps"], s["min_lr_ratio"]};
  ThreadPool pool(2);
  for (int step = 0; step < s["steps"].get<int>(); ++step) {
    auto loss = ForwardBackward(*model, batch, 1.0f / tokens.size(), &grads, &pool,
                                /*overwrite=*/true);
    ASSERT_TRUE(loss.ok());
    const double ref = s["losses"][step];
    EXPECT_NEAR(loss->mean(), ref, 1e-5 * ref) << "step " << step;
    std::printf("step %d: loss %.9f, torch float64 %.9f\n", step, loss->mean(), ref);
    const double norm = GradNorm(params, &pool);
    opt.Step(params, sched.At(step), &pool, static_cast<float>(ClipCoefficient(norm, s["clip"])));
  }
}

// A batch as two micro-batches (each scaled by 1 / the step's target count) gives the gradient of
// the whole batch, up to float32 summation order.
TEST(TrainOptimizer, GradientAccumulation) {
  const nlohmann::json v = testing::LoadTrainGolden()["variants"][2];  // 3 sequences
  const LlamaConfig c = testing::ConfigFromGolden(v["config"]);
  auto model = MakeTrainableModel(c, testing::FormulaWeights(c, v["weights_seed"]), nullptr);
  ASSERT_TRUE(model.ok());
  const std::vector<int> tokens = v["tokens"], targets = v["targets"];
  const int seq_len = v["seq_len"];
  LlamaGrads whole = MakeGrads(c), acc = MakeGrads(c);
  const float scale = 1.0f / tokens.size();
  auto l = ForwardBackward(*model, {3, seq_len, tokens, targets}, scale, &whole, nullptr);
  ASSERT_TRUE(l.ok());
  const std::span<const int> in(tokens), tg(targets);
  auto a = ForwardBackward(*model, {1, seq_len, in.first(seq_len), tg.first(seq_len)}, scale, &acc,
                           nullptr);
  auto b = ForwardBackward(*model, {2, seq_len, in.subspan(seq_len), tg.subspan(seq_len)}, scale,
                           &acc, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NEAR(a->sum + b->sum, l->sum, 1e-9 * l->sum);
  std::vector<const GradTensor*> ws;
  ForEachTensor(whole, [&](TensorId, const GradTensor& t) { ws.push_back(&t); });
  size_t i = 0;
  ForEachTensor(acc, [&](TensorId, const GradTensor& t) {
    const GradTensor& w = *ws[i++];
    double diff = 0, norm = 0;
    for (int64_t j = 0; j < t.numel(); ++j) {
      diff += std::pow(static_cast<double>(t.data[j]) - w.data[j], 2);
      norm += std::pow(static_cast<double>(w.data[j]), 2);
    }
    EXPECT_LT(std::sqrt(diff / norm), 1e-5);
  });
  EXPECT_NEAR(GlobalNorm(acc), GlobalNorm(whole), 1e-5 * GlobalNorm(whole));
}

}  // namespace
}  // namespace herd
