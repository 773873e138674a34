// The training step's loss and gradient: ForwardRecord (model/forward.h: the inference blocks and
// kernels, recording their activations) then the backward pass, layer by layer in reverse, with
// the backward ops of kernels/backward.h:
//   loss = sum over targeted positions of -log softmax(logits)[target]  (cross-entropy, in double)
//   output:    dxn = dlogits W_out,  dW_out += dlogits^T xn   (tied: into tok_embeddings)
//   per layer: FFN (w2, SwiGLU, w1/w3, ffn_norm) then attention (wo, attention, RoPE, wq/wk/wv,
//              attn_norm), each adding its input gradient to the residual stream's
//   embedding: dE[token] += dx (rows in order)
// Deterministic: the same batch gives bit-identical gradients whatever the thread count.
#pragma once

#include <cstdint>
#include <span>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/load.h"
#include "train/grads.h"

namespace herd {

// `batch` sequences of seq_len tokens, each run from position 0.
struct TokenBatch {
  int batch = 0, seq_len = 0;
  std::span<const int> inputs;   // [batch, seq_len]
  std::span<const int> targets;  // [batch, seq_len]: the next token; -1: no loss at this position
};

struct LossSum {
  double sum = 0;     // sum of -log p(target) over the targeted positions
  int64_t count = 0;  // targeted positions
  double mean() const { return count ? sum / count : 0.0; }
};

// The batch's loss, and grad_scale * d(loss.sum)/d(weights) added to *grads (for a mean over the
// tokens of an optimizer step, grad_scale = 1 / its target count). The model's weights must be
// float32 (MakeTrainableModel).
Result<LossSum> ForwardBackward(const Model& model, const TokenBatch& batch, float grad_scale,
                                LlamaGrads* grads, ThreadPool* pool);

// The loss alone (validation, finite differences): Forward on each sequence with a float32 cache,
// the same logits as ForwardBackward's.
Result<LossSum> ForwardLoss(const Model& model, const TokenBatch& batch, ThreadPool* pool);

// -log softmax(logits)[target] over `vocab` logits (float exponentials summed in double); with
// dlogits (which may alias logits), writes scale * (softmax - onehot(target)). target -1: returns 0
// and writes zeros.
double CrossEntropy(const float* logits, int vocab, int target, float scale, float* dlogits);

}  // namespace herd
