// The Llama forward pass (cf. Meta's reference model.py), multi-threaded:
//   h = embed(tokens)
//   for each layer:  h = h + Attention(RMSNorm(h)),  h = h + FeedForward(RMSNorm(h))
//   logits = output(RMSNorm(h))
// Attention: q, k, v projections, RoPE on q and k, append k and v to the sequence's KV cache,
// causal GQA attention, output projection. FeedForward: w2(silu(w1 x) * w3 x).
// Activations are float32; each matmul multiplies the weights in their storage dtype,
// quantising its input to 8 bits per block for the block formats as llama.cpp does
// (kernels/qdot.h); the KV cache holds f16 by default.
#pragma once

#include <span>
#include <vector>

#include "base/aligned.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "kernels/attention.h"
#include "model/load.h"

namespace herd {

// Keys and values of one sequence, per layer, in f16 (the default, as llama.cpp: half the memory
// of f32, ~1e-3 relative rounding of k and v), bf16 or f32 (exact; for comparisons with
// references). f16 / bf16 caches are head-major, [n_kv_heads, capacity, head_dim], so that decode
// reads each kv head's keys and values as one stream, with keys in transposed 16-position blocks
// where the AVX-512 attention runs; f32 caches are position-major, [capacity, n_kv_heads *
// head_dim], as training's attention reads them (kernels::KVRows).
class KVCache {
 public:
  KVCache(const LlamaConfig& config, int capacity, DType dtype = DType::kF16);
  int capacity() const { return capacity_; }
  int size() const { return size_; }  // positions filled
  DType dtype() const { return dtype_; }
  void Clear() { size_ = 0; }
  // Forgets positions >= n (n <= size()).
  void Truncate(int n);
  // Makes this cache hold src's first n positions (bytes copied; same config and dtype, n <=
  // src.size(), n <= capacity()): a sequence that shares a prompt prefix with another starts from
  // its keys and values instead of recomputing them.
  void CopyPrefix(const KVCache& src, int n);
  static uint64_t BytesFor(const LlamaConfig& config, int capacity, DType dtype = DType::kF16);
  // Whether dtype can hold a cache (f16, bf16, f32).
  static bool IsCacheType(DType dtype);

  // Converts and stores n positions' keys and values (float rows of n_kv_heads * head_dim) at
  // positions pos .. pos + n - 1 (< capacity).
  void Store(int layer, int pos, int n, const float* k, const float* v);
  // The layer's rows for attention.
  kernels::KVRows Rows(int layer) const;

 private:
  bool head_major() const { return dtype_ != DType::kF32; }

  int capacity_ = 0;
  int size_ = 0;
  int64_t row_ = 0;  // elements per position
  int n_kv_heads_ = 0, head_dim_ = 0;
  // Keys in transposed 16-position blocks (kernels::KVRows::k_blocked): head-major caches when the
  // AVX-512 attention kernels run. Positions per kv head are then allocated in whole blocks.
  bool k_blocked_ = false;
  int head_positions_ = 0;  // allocated positions per kv head (capacity, rounded up for blocks)
  DType dtype_ = DType::kF16;
  std::vector<std::vector<uint8_t>> k_, v_;

 public:
  // Called by Forward once the new positions' keys and values are written.
  void Advance(int n) { size_ += n; }
};

// Runs `tokens` at positions cache->size() .. cache->size() + n - 1 and appends their keys and
// values to the cache. Writes logits for the last token ([vocab]) or, with all_logits, for every
// token ([n, vocab], row-major). Errors: a token id out of range, or the cache would overflow.
// The same code path as ForwardBatch (a batch of one).
Status Forward(const Model& model, std::span<const int> tokens, KVCache* cache, bool all_logits,
               std::vector<float>* logits, ThreadPool* pool);

// One sequence's share of a batched step.
struct BatchSeq {
  std::span<const int> tokens;  // run at positions cache->size() .. + tokens.size() - 1
  KVCache* cache;               // this sequence's cache (distinct per BatchSeq)
  bool want_logits = false;     // write the logits of the last token of `tokens`
};

// Runs several sequences in one pass: the weight matmuls see the rows of all sequences together
// (each weight is read once per step for all of them), RoPE uses each row's own position, and
// attention runs per sequence over its own cache. Writes one logits row per want_logits
// sequence, in order: [n_want, vocab]. Each row is bit-identical to what Forward on that sequence
// alone would give (same tokens, same cache contents). Errors as Forward (empty tokens, id out of
// range, cache overflow, the same cache twice), checked before anything runs: on error no cache
// is modified.
Status ForwardBatch(const Model& model, std::span<const BatchSeq> seqs, std::vector<float>* logits,
                    ThreadPool* pool);

// The activations a training step's backward pass needs (train/backward.h), recorded by
// ForwardRecord while Forward's blocks run. Rows are the tokens of all sequences in order.
struct LayerTape {
  AlignedFloats x;           // [rows, dim]      residual stream entering the layer
  AlignedFloats xn_attn;     // [rows, dim]      RMSNorm(x) * attn_norm
  AlignedFloats attn_scale;  // [rows]         the scale RMSNorm multiplied x's row by
  AlignedFloats q;           // [rows, n_heads * head_dim]     after RoPE
  AlignedFloats k, v;        // [rows, n_kv_heads * head_dim]  k after RoPE
  AlignedFloats att;         // [rows, n_heads * head_dim]     attention output (input to wo)
  AlignedFloats h;           // [rows, dim]      x + attention: residual entering the FFN
  AlignedFloats xn_ffn;      // [rows, dim]      RMSNorm(h) * ffn_norm
  AlignedFloats ffn_scale;   // [rows]         the scale RMSNorm multiplied h's row by
  AlignedFloats gate, up;    // [rows, ffn_dim]  w1 xn_ffn, w3 xn_ffn (before SwiGLU)
  AlignedFloats act;         // [rows, ffn_dim]  silu(gate) * up (input to w2)
};
struct ForwardTape {
  int64_t rows = 0;
  std::vector<LayerTape> layers;
  AlignedFloats x_final;      // [rows, dim] residual after the last layer
  AlignedFloats xn_final;     // [rows, dim] RMSNorm(x_final) * norm (input to output)
  AlignedFloats final_scale;  // [rows]   the scale RMSNorm multiplied x_final's row by
  AlignedFloats cos, sin;     // [rows, head_dim / 2] each row's RoPE table
};

// A training forward: runs each sequence from position 0 (attention over its own float32 keys
// and values, read from the tape: exact) and records the activations in `tape` (computed there in
// place, all rows as one chunk), up to the final norm's output xn_final; the output projection is
// left to the caller (OutputLogits), which takes it a block of rows at a time with the loss so
// that [rows, vocab] logits never exist at once. The same blocks and kernels as Forward, except
// attention: blocks of queries as matrix products (kernels::CausalAttention, whose probabilities
// the backward recomputes bit for bit) instead of one query at a time; the two agree to float
// rounding. Errors as Forward (empty sequence, token id out of range).
Status ForwardRecord(const Model& model, std::span<const std::span<const int>> seqs,
                     ForwardTape* tape, ThreadPool* pool);

// logits [rows, vocab] = the output projection of rows of xn (a tape's xn_final), as Forward
// computes it (each row the same bits whatever the other rows).
void OutputLogits(const Model& model, const float* xn, int rows, float* logits, ThreadPool* pool);

}  // namespace herd
