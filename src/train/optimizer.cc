#include "train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "base/check.h"
#include "kernels/adamw.h"

namespace herd {

double LrSchedule::At(int64_t step) const {
  if (step < warmup_steps) return lr * static_cast<double>(step + 1) / warmup_steps;
  const double p =
      std::min(1.0, static_cast<double>(step - warmup_steps) /
                        static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps)));
  const double lr_min = lr * min_lr_ratio;
  return lr_min + 0.5 * (1.0 + std::cos(M_PI * p)) * (lr - lr_min);
}

std::vector<ParamRef> ParamRefs(const LlamaWeights& weights, LlamaGrads* grads) {
  std::vector<ParamRef> refs;
  ForEachTensor(weights, [&](TensorId, const Weight& w) {
    CHECK(w.dtype == DType::kF32);
    refs.push_back({MutableF32(w), nullptr, w.numel(), w.shape.size() == 2});
  });
  size_t i = 0;
  ForEachTensor(*grads, [&](TensorId, GradTensor& g) {
    CHECK(i < refs.size() && g.numel() == refs[i].n);
    refs[i++].g = g.f32();
  });
  CHECK(i == refs.size());
  return refs;
}

namespace {

constexpr int64_t kBlock = 16384;  // elements per work item (AddLaneGrads, AdamW)

// (tensor, first element) of every block of every tensor, in order.
std::vector<std::pair<size_t, int64_t>> Blocks(std::span<const ParamRef> params) {
  std::vector<std::pair<size_t, int64_t>> items;
  for (size_t t = 0; t < params.size(); ++t)
    for (int64_t b = 0; b < params[t].n; b += kBlock) items.push_back({t, b});
  return items;
}

}  // namespace

double GradNorm(std::span<const ParamRef> params, ThreadPool* pool) {
  return AddLaneGrads(params, {}, /*norm=*/true, pool);
}

double AddLaneGrads(std::span<const ParamRef> params, std::span<const std::vector<ParamRef>> lanes,
                    bool norm, ThreadPool* pool) {
  for (const std::vector<ParamRef>& lane : lanes) {
    CHECK(lane.size() == params.size());
    for (size_t t = 0; t < params.size(); ++t) CHECK(lane[t].n == params[t].n);
  }
  const auto items = Blocks(params);
  std::vector<double> sums(items.size());
  ParallelFor(pool, items.size(), [&](size_t item, int) {
    const auto [t, begin] = items[item];
    std::vector<const float*> parts;
    for (const std::vector<ParamRef>& lane : lanes) parts.push_back(lane[t].g + begin);
    const int64_t n = std::min(params[t].n, begin + kBlock) - begin;
    sums[item] = kernels::AddParts(params[t].g + begin, parts, n, norm);
  });
  double ss = 0;
  for (double s : sums) ss += s;
  return std::sqrt(ss);
}

double ClipCoefficient(double norm, double max_norm) {
  return std::min(1.0, max_norm / (norm + 1e-6));
}

void AdamW::Step(std::span<const ParamRef> params, double lr, ThreadPool* pool, float grad_scale) {
  if (m_.empty()) {
    for (const ParamRef& p : params) {
      m_.emplace_back(p.n, 0.0f);
      v_.emplace_back(p.n, 0.0f);
    }
  }
  CHECK(m_.size() == params.size());
  ++steps_;
  const AdamWOptions& o = options_;
  const double bc1 = 1.0 - std::pow(o.beta1, static_cast<double>(steps_));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(o.beta2, static_cast<double>(steps_)));
  // The step's constants, in double, rounded to float once (kernels/adamw.h).
  kernels::AdamWConstants k;
  k.b1 = static_cast<float>(o.beta1), k.c1 = static_cast<float>(1.0 - o.beta1);
  k.b2 = static_cast<float>(o.beta2), k.c2 = static_cast<float>(1.0 - o.beta2);
  k.inv_bc2 = static_cast<float>(1.0 / bc2_sqrt), k.eps = static_cast<float>(o.eps);
  k.step = static_cast<float>(lr / bc1);
  k.grad_scale = grad_scale;
  const float decay = static_cast<float>(1.0 - lr * o.weight_decay);
  // Work items: blocks of elements of every tensor (each element is independent).
  for (size_t t = 0; t < params.size(); ++t)
    CHECK(static_cast<int64_t>(m_[t].size()) == params[t].n);
  const auto items = Blocks(params);
  auto run = [&](size_t item, int) {
    const auto [t, begin] = items[item];
    const ParamRef& p = params[t];
    kernels::AdamWConstants kt = k;
    kt.decay = p.decay ? decay : 1.0f;
    const int64_t n = std::min(p.n, begin + kBlock) - begin;
    kernels::AdamWUpdate(kt, p.g + begin, p.w + begin, m_[t].data() + begin, v_[t].data() + begin,
                         n);
  };
  ParallelFor(pool, items.size(), run);
}

}  // namespace herd
