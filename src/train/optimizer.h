// The optimizer of a training step: global-norm gradient clipping, the learning-rate schedule
// (linear warmup, then cosine decay to a floor) and AdamW with float32 master weights and moments.
//
// AdamW computes what torch.optim.AdamW computes (decoupled weight decay, bias-corrected moments;
// tests/train_optimizer_test.cc checks it against torch's golden), per element in float32 as torch
// does for float32 parameters (kernels/adamw.h: SIMD, the same bits at every ISA level):
//   w *= 1 - lr * wd            (wd only for decayed tensors: the matrices, not the norms)
//   m  = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2
//   w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/aligned.h"
#include "base/thread_pool.h"
#include "model/weights.h"
#include "train/grads.h"

namespace herd {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.1;  // applied to the tensors marked decay
};

// lr(step) for update number step + 1 (step from 0):
//   step < warmup: lr * (step + 1) / warmup
//   else: lr_min + (lr - lr_min) * (1 + cos(pi * p)) / 2, p = min(1, (step - warmup) /
//   max(1, total - warmup)), lr_min = lr * min_lr_ratio.
struct LrSchedule {
  double lr = 3e-4;
  int64_t warmup_steps = 0, total_steps = 1;
  double min_lr_ratio = 0.1;
  double At(int64_t step) const;
};

// One tensor the optimizer updates, and its gradient.
struct ParamRef {
  float* w;
  float* g;
  int64_t n;
  bool decay;
};

// The tensors of float32 weights the caller owns (MakeTrainableModel) with their gradients, in
// ForEachTensor order; 2-D tensors (embedding and matrices) decay, the norms do not.
std::vector<ParamRef> ParamRefs(const LlamaWeights& weights, LlamaGrads* grads);

// sqrt of the sum of squares of every gradient, in double: each block of 16384 elements of a
// tensor summed on its own (8 partial sums), the blocks then in order, so the value does not
// depend on the pool's threads.
double GradNorm(std::span<const ParamRef> params, ThreadPool* pool = nullptr);

// Adds the gradients of each of `lanes` (ParamRefs of the same tensors, train/trainer.h) onto
// params', lane after lane; in the same pass over memory, with norm, the GradNorm of the sums
// (the same value), else returns 0.
double AddLaneGrads(std::span<const ParamRef> params, std::span<const std::vector<ParamRef>> lanes,
                    bool norm, ThreadPool* pool = nullptr);

// As torch.nn.utils.clip_grad_norm_: the factor min(1, max_norm / (norm + 1e-6)) that gradients
// of global norm `norm` are multiplied by (in float32, as torch multiplies float32 gradients: the
// grad_scale of AdamW::Step).
double ClipCoefficient(double norm, double max_norm);

class AdamW {
 public:
  explicit AdamW(AdamWOptions options = {}) : options_(options) {}

  // One update with learning rate lr from the gradients times grad_scale (clipping's factor). The
  // first call sizes the moments (zeros) from `params`; later calls must pass the same tensors in
  // the same order.
  void Step(std::span<const ParamRef> params, double lr, ThreadPool* pool, float grad_scale = 1.0f);

  const AdamWOptions& options() const { return options_; }
  int64_t steps() const { return steps_; }
  // The moments, one vector per tensor (in ParamRefs order): for checkpoints.
  std::vector<AlignedFloats>& m() { return m_; }
  std::vector<AlignedFloats>& v() { return v_; }
  const std::vector<AlignedFloats>& m() const { return m_; }
  const std::vector<AlignedFloats>& v() const { return v_; }
  void set_steps(int64_t steps) { steps_ = steps; }

 private:
  AdamWOptions options_;
  int64_t steps_ = 0;
  std::vector<AlignedFloats> m_, v_;
};

}  // namespace herd
