#include "train/backward.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/aligned.h"
#include "base/check.h"
#include "base/grow.h"
#include "kernels/backward.h"
#include "kernels/expsum.h"
#include "kernels/ops.h"
#include "model/forward.h"

namespace herd {
namespace {

// Buffers of one step, reused across steps (they only grow).
struct Scratch {
  ForwardTape tape;
  AlignedFloats logits;            // [kLossRows, vocab], overwritten by dlogits
  AlignedFloats dres;              // [rows, dim] gradient of the residual stream
  AlignedFloats dxn;               // [rows, dim]
  AlignedFloats dact, dgate, dup;  // [rows, ffn_dim]
  AlignedFloats datt, dq, dk, dv;  // [rows, q_dim] / [rows, kv_dim]
  std::vector<double> row_loss;    // [rows]
};

// One per calling thread, reused across steps and shared by ForwardBackward and ForwardLoss (one
// tape in memory, not two). Callers pass it on by reference, so the pool's workers see the
// caller's instance, not their own.
Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

// A sequence of the forward and backward: rows [row0, row0 + n) of the batch, positions 0 .. n-1.
struct Segment {
  int64_t row0 = 0;
  int n = 0;
};

// Rows per work item of the per-row loops (a row costs less to compute than to hand out alone).
constexpr int64_t kRowsPerItem = 16;

// RMSNorm of each row of x [rows, n] with `weight` (scale: the forward's row scales), backward:
// dx += the input's gradient (so the residual stream's gradient collects it), dweight += (or, with
// overwrite, =) sum over rows of dy * x * r: each block of kRowsPerItem rows sums its rows in
// order (in double, while they are in cache), then the blocks are added in order. Fixed blocks:
// the same bits at any thread count.
void NormBackward(const float* x, const Weight& weight, const float* scale, const float* dy,
                  int64_t rows, int64_t n, float* dx, float* dweight, bool overwrite,
                  ThreadPool* pool) {
  const int64_t blocks = (rows + kRowsPerItem - 1) / kRowsPerItem;
  std::vector<double> partial(blocks * n, 0.0);
  ParallelFor(pool, static_cast<size_t>(blocks), [&](size_t block, int) {
    const int64_t r0 = static_cast<int64_t>(block) * kRowsPerItem;
    kernels::RMSNormBackwardRows(x + r0 * n, weight.f32(), dy + r0 * n, scale + r0,
                                 std::min(kRowsPerItem, rows - r0), n, dx + r0 * n,
                                 &partial[block * n]);
  });
  for (int64_t c = 0; c < n; ++c) {
    double sum = 0;
    for (int64_t b = 0; b < blocks; ++b) sum += partial[b * n + c];
    dweight[c] = overwrite ? static_cast<float>(sum) : dweight[c] + static_cast<float>(sum);
  }
}

// dres holds the gradient of the layer's output; on return, of its input x. The weights'
// gradients are added to *g, or written with overwrite.
void LayerBackward(const Model& model, int layer, std::span<const Segment> segs, Scratch* s,
                   LayerGrads* g, bool overwrite, ThreadPool* pool) {
  const bool add = !overwrite;
  const LlamaConfig& c = model.config;
  const LayerWeights& w = model.weights.layers[layer];
  const LayerTape& t = s->tape.layers[layer];
  const int64_t rows = s->tape.rows;
  const int64_t q_dim = int64_t{c.n_heads} * c.head_dim, kv = int64_t{c.n_kv_heads} * c.head_dim;
  const int half = c.head_dim / 2;
  float* dres = s->dres.data();

  // Feed-forward: x_out = h + w2(silu(w1 xn) * w3 xn), xn = RMSNorm(h) * ffn_norm.
  kernels::MatMulBackward(w.w2.mat(), t.act.data(), dres, rows, s->dact.data(), g->w2.f32(), pool,
                          /*accumulate_dx=*/false, /*accumulate_dw=*/add);
  ParallelForBlocks(pool, rows, kRowsPerItem, [&](int64_t r) {
    const int64_t at = r * c.ffn_dim;
    kernels::SwiGLUBackward(&t.gate[at], &t.up[at], &s->dact[at], c.ffn_dim, &s->dgate[at],
                            &s->dup[at]);
  });
  // dxn = dgate w1 + dup w3: the second product accumulates onto the first.
  kernels::MatMulBackward(w.w1.mat(), t.xn_ffn.data(), s->dgate.data(), rows, s->dxn.data(),
                          g->w1.f32(), pool, /*accumulate_dx=*/false, /*accumulate_dw=*/add);
  kernels::MatMulBackward(w.w3.mat(), t.xn_ffn.data(), s->dup.data(), rows, s->dxn.data(),
                          g->w3.f32(), pool, /*accumulate_dx=*/true, /*accumulate_dw=*/add);
  NormBackward(t.h.data(), w.ffn_norm, t.ffn_scale.data(), s->dxn.data(), rows, c.dim, dres,
               g->ffn_norm.f32(), overwrite, pool);

  // Attention: h = x + wo(Attention(rope(wq xn), rope(wk xn), wv xn)), xn = RMSNorm(x) * attn_norm.
  kernels::MatMulBackward(w.wo.mat(), t.att.data(), dres, rows, s->datt.data(), g->wo.f32(), pool,
                          /*accumulate_dx=*/false, /*accumulate_dw=*/add);
  const kernels::AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
  // Per segment: its keys and values are its own, so no gradient flows between segments.
  ParallelForBlocks(pool, static_cast<int64_t>(segs.size()) * c.n_kv_heads, 1, [&](int64_t item) {
    const Segment& seg = segs[item / c.n_kv_heads];
    const int64_t row0 = seg.row0;
    const int kv_head = static_cast<int>(item % c.n_kv_heads);
    kernels::AttentionBackward(&t.q[row0 * q_dim], &t.k[row0 * kv], &t.v[row0 * kv],
                               &t.att[row0 * q_dim], &s->datt[row0 * q_dim], seg.n, shape, kv_head,
                               &s->dq[row0 * q_dim], &s->dk[row0 * kv], &s->dv[row0 * kv]);
  });
  ParallelForBlocks(pool, rows, kRowsPerItem, [&](int64_t r) {
    const float* cos = &s->tape.cos[r * half];
    const float* sin = &s->tape.sin[r * half];
    kernels::RopeInterleavedBackward(&s->dq[r * q_dim], c.n_heads, c.head_dim, cos, sin);
    kernels::RopeInterleavedBackward(&s->dk[r * kv], c.n_kv_heads, c.head_dim, cos, sin);
  });
  kernels::MatMulBackward(w.wq.mat(), t.xn_attn.data(), s->dq.data(), rows, s->dxn.data(),
                          g->wq.f32(), pool, /*accumulate_dx=*/false, /*accumulate_dw=*/add);
  kernels::MatMulBackward(w.wk.mat(), t.xn_attn.data(), s->dk.data(), rows, s->dxn.data(),
                          g->wk.f32(), pool, /*accumulate_dx=*/true, /*accumulate_dw=*/add);
  kernels::MatMulBackward(w.wv.mat(), t.xn_attn.data(), s->dv.data(), rows, s->dxn.data(),
                          g->wv.f32(), pool, /*accumulate_dx=*/true, /*accumulate_dw=*/add);
  NormBackward(t.x.data(), w.attn_norm, t.attn_scale.data(), s->dxn.data(), rows, c.dim, dres,
               g->attn_norm.f32(), overwrite, pool);
}

Status CheckBatch(const Model& model, const TokenBatch& b) {
  const int64_t n = int64_t{b.batch} * b.seq_len;
  if (b.batch <= 0 || b.seq_len <= 0) return Status::Error("empty batch");
  if (static_cast<int64_t>(b.inputs.size()) != n || static_cast<int64_t>(b.targets.size()) != n)
    return Status::Errorf("batch of {} x {} needs {} inputs and targets, not {} and {}", b.batch,
                          b.seq_len, n, b.inputs.size(), b.targets.size());
  for (int64_t i = 0; i < n; ++i) {
    if (b.targets[i] < -1 || b.targets[i] >= model.config.vocab_size)
      return Status::Errorf("target {} (at index {}) is out of range", b.targets[i], i);
  }
  if (b.doc_starts.empty()) return Status::Ok();
  if (static_cast<int64_t>(b.doc_starts.size()) != b.batch)
    return Status::Errorf("batch of {} rows has document starts for {} rows", b.batch,
                          b.doc_starts.size());
  for (int row = 0; row < b.batch; ++row) {
    int prev = 0;
    for (int p : b.doc_starts[row]) {
      if (p <= prev || p > b.seq_len)
        return Status::Errorf(
            "row {}: document start {} is not after {} and within [1, seq_len {}] (starts must "
            "increase)",
            row, p, prev, b.seq_len);
      prev = p;
    }
  }
  return Status::Ok();
}

// The batch's rows cut at their document starts, in row order. Without doc_starts: one segment
// per row, as unpacked training always ran.
std::vector<Segment> Segments(const TokenBatch& b) {
  std::vector<Segment> segs;
  for (int row = 0; row < b.batch; ++row) {
    const int64_t row0 = int64_t{row} * b.seq_len;
    int begin = 0;
    if (!b.doc_starts.empty()) {
      for (int p : b.doc_starts[row]) {
        if (p >= b.seq_len) break;  // starts at the last target only: nothing to cut
        segs.push_back({row0 + begin, p - begin});
        begin = p;
      }
    }
    segs.push_back({row0 + begin, b.seq_len - begin});
  }
  return segs;
}

// The token spans ForwardRecord runs, one per segment.
std::vector<std::span<const int>> Sequences(const TokenBatch& b, std::span<const Segment> segs) {
  std::vector<std::span<const int>> seqs;
  seqs.reserve(segs.size());
  for (const Segment& g : segs) seqs.push_back(b.inputs.subspan(g.row0, g.n));
  return seqs;
}

// Rows of logits computed at once: a block of [rows, vocab] logits (and its dlogits, in place)
// stays in cache from the output projection through the cross-entropy to the backward's products.
constexpr int64_t kLossRows = 256;

// The forward both ForwardBackward and ForwardLoss run: every segment from position 0 through
// ForwardRecord, its activations in s->tape; then, kLossRows rows at a time, the logits
// (OutputLogits) and each row's cross-entropy in s->row_loss. With d_out (ForwardBackward), also
// the output projection's backward for those rows: scale * dlogits replace the logits, the final
// norm's output gradient goes to s->dxn and d_out += dlogits^T xn_final (rows in order, one FMA
// chain per element, as one product over all rows; with overwrite, the first block writes d_out).
// The loss is summed in row order, so it does not depend on the thread count or on which of the
// two ran.
Result<LossSum> ForwardAndLoss(const Model& model, const TokenBatch& b,
                               std::span<const Segment> segs, float scale, float* d_out,
                               bool overwrite, Scratch* s, ThreadPool* pool) {
  HERD_RETURN_IF_ERROR(ForwardRecord(model, Sequences(b, segs), &s->tape, pool));
  const int vocab = model.config.vocab_size, dim = model.config.dim;
  const int64_t rows = s->tape.rows;
  s->row_loss.assign(rows, 0.0);
  Grow(s->logits, std::min(rows, kLossRows) * vocab);
  if (d_out) Grow(s->dxn, rows * dim);
  for (int64_t r0 = 0; r0 < rows; r0 += kLossRows) {
    const int64_t n = std::min(kLossRows, rows - r0);
    const float* xn = &s->tape.xn_final[r0 * dim];
    OutputLogits(model, xn, static_cast<int>(n), s->logits.data(), pool);
    ParallelForBlocks(pool, n, 1, [&](int64_t r) {
      float* row = &s->logits[r * vocab];
      s->row_loss[r0 + r] =
          CrossEntropy(row, vocab, b.targets[r0 + r], scale, d_out ? row : nullptr);
    });
    if (d_out) {
      kernels::MatMulBackward(model.weights.output.mat(), xn, s->logits.data(), n,
                              &s->dxn[r0 * dim], d_out, pool, /*accumulate_dx=*/false,
                              /*accumulate_dw=*/!(overwrite && r0 == 0));
    }
  }
  LossSum loss;
  for (int64_t r = 0; r < rows; ++r) {
    loss.sum += s->row_loss[r];
    loss.count += b.targets[r] >= 0;
  }
  return loss;
}

}  // namespace

double CrossEntropy(const float* logits, int vocab, int target, float scale, float* dlogits) {
  if (target < 0) {
    if (dlogits) std::fill_n(dlogits, vocab, 0.0f);
    return 0.0;
  }
  const float max = kernels::MaxOf(logits, vocab);
  const double target_logit = logits[target];  // before dlogits (which may alias logits) is written
  // One float exp per logit (the vocabulary is large), summed in double (kernels/expsum.h: the same
  // bits at every ISA level); both paths sum the same values in the same order, so ForwardLoss and
  // ForwardBackward agree bit for bit.
  const double sum = kernels::ExpShiftSum(logits, vocab, max, dlogits);
  if (dlogits) {
    const float f = static_cast<float>(scale / sum);
    for (int i = 0; i < vocab; ++i) dlogits[i] *= f;
    dlogits[target] -= scale;
  }
  return max + std::log(sum) - target_logit;
}

Result<LossSum> ForwardBackward(const Model& model, const TokenBatch& b, float grad_scale,
                                LlamaGrads* grads, ThreadPool* pool, bool overwrite) {
  HERD_RETURN_IF_ERROR(CheckBatch(model, b));
  const LlamaConfig& c = model.config;
  bool all_f32 = true;
  ForEachTensor(model.weights,
                [&](TensorId, const Weight& w) { all_f32 &= w.dtype == DType::kF32; });
  if (!all_f32) return Status::Error("training needs float32 weights");
  Scratch& s = ThreadScratch();
  const std::vector<Segment> segs = Segments(b);
  // The forward, the cross-entropy and the output projection's backward (into s.dxn, d_out).
  GradTensor& d_out = grads->tied ? grads->tok_embeddings : grads->output;
  auto loss = ForwardAndLoss(model, b, segs, grad_scale, d_out.f32(), overwrite, &s, pool);
  if (!loss.ok()) return loss.status();
  const int64_t rows = s.tape.rows;
  const int64_t q_dim = int64_t{c.n_heads} * c.head_dim, kv = int64_t{c.n_kv_heads} * c.head_dim;
  Grow(s.dres, rows * c.dim);  // s.dxn: sized by ForwardAndLoss
  Grow(s.dact, rows * c.ffn_dim), Grow(s.dgate, rows * c.ffn_dim), Grow(s.dup, rows * c.ffn_dim);
  Grow(s.datt, rows * q_dim), Grow(s.dq, rows * q_dim), Grow(s.dk, rows * kv),
      Grow(s.dv, rows * kv);

  // Final norm.
  std::fill_n(s.dres.data(), rows * c.dim, 0.0f);
  NormBackward(s.tape.x_final.data(), model.weights.norm, s.tape.final_scale.data(), s.dxn.data(),
               rows, c.dim, s.dres.data(), grads->norm.f32(), overwrite, pool);

  for (int layer = c.n_layers - 1; layer >= 0; --layer)
    LayerBackward(model, layer, segs, &s, &grads->layers[layer], overwrite, pool);

  // Embedding: rows in order, so repeated tokens sum deterministically. (Tied, the output
  // projection's backward has written or added to it already.)
  float* d_emb = grads->tok_embeddings.f32();
  if (overwrite && !grads->tied) std::fill_n(d_emb, grads->tok_embeddings.numel(), 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    kernels::Add(d_emb + int64_t{b.inputs[r]} * c.dim, &s.dres[r * c.dim], c.dim);
  return *loss;
}

Result<LossSum> ForwardLoss(const Model& model, const TokenBatch& b, ThreadPool* pool) {
  HERD_RETURN_IF_ERROR(CheckBatch(model, b));
  return ForwardAndLoss(model, b, Segments(b), 0.0f, /*d_out=*/nullptr, false, &ThreadScratch(),
                        pool);
}

}  // namespace herd
