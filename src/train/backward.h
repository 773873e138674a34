// The training step's loss and gradient: ForwardRecord (model/forward.h: the inference blocks,
// recording their activations) then the backward pass, layer by layer in reverse, with
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
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/load.h"
#include "train/grads.h"

namespace herd {

// `batch` rows of seq_len tokens. Without doc_starts each row is one sequence run from position 0.
// With doc_starts (packed windows, train/sampler.h) row b is cut before each p in doc_starts[b]
// into segments, and each segment is an independent sequence: its positions restart at 0 and its
// tokens attend only to earlier tokens of the same segment (Llama 3's mask between the documents
// of a packed sequence). So a document inside a packed row computes exactly what it computes alone.
// Targets are per row and unaffected: whatever the row holds at a segment's last position (the
// sampler gives the next document's first token after an eos) is its target.
struct TokenBatch {
  int batch = 0, seq_len = 0;
  std::span<const int> inputs;   // [batch, seq_len]
  std::span<const int> targets;  // [batch, seq_len]: the next token; -1: no loss at this position
  // Empty, or [batch]: row b's document starts, strictly increasing in [1, seq_len]. A start at
  // seq_len (a document whose first token is only the row's last target) cuts nothing.
  std::span<const std::vector<int>> doc_starts = {};
};

struct LossSum {
  double sum = 0;     // sum of -log p(target) over the targeted positions
  int64_t count = 0;  // targeted positions
  double mean() const { return count ? sum / count : 0.0; }
};

// The batch's loss, and grad_scale * d(loss.sum)/d(weights) added to *grads (for a mean over the
// tokens of an optimizer step, grad_scale = 1 / its target count), or with overwrite written
// there: the old contents are then never read (no zeroing before a step's first micro-batch, and
// the weight gradients' products start their FMA chains from 0 instead of loading them). The
// model's weights must be float32 (MakeTrainableModel).
Result<LossSum> ForwardBackward(const Model& model, const TokenBatch& batch, float grad_scale,
                                LlamaGrads* grads, ThreadPool* pool, bool overwrite = false);

// The loss alone (validation, finite differences): the same forward (ForwardRecord over the same
// segments) and the same cross-entropy sums as ForwardBackward, so the same loss bit for bit.
Result<LossSum> ForwardLoss(const Model& model, const TokenBatch& batch, ThreadPool* pool);

// -log softmax(logits)[target] over `vocab` logits (float exponentials summed in double); with
// dlogits (which may alias logits), writes scale * (softmax - onehot(target)). target -1: returns 0
// and writes zeros.
double CrossEntropy(const float* logits, int vocab, int target, float scale, float* dlogits);

}  // namespace herd
