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

#include "base/status.h"
#include "base/thread_pool.h"
#include "kernels/attention.h"
#include "model/load.h"

namespace herd {

// Keys and values of one sequence, per layer: [capacity, n_kv_heads * head_dim] in f16 (the
// default, as llama.cpp: half the memory of f32, ~1e-3 relative rounding of k and v), bf16 or
// f32 (exact; for comparisons with references).
class KVCache {
 public:
  KVCache(const LlamaConfig& config, int capacity, DType dtype = DType::kF16);
  int capacity() const { return capacity_; }
  int size() const { return size_; }  // positions filled
  DType dtype() const { return dtype_; }
  void Clear() { size_ = 0; }
  // Forgets positions >= n (n <= size()).
  void Truncate(int n);
  static uint64_t BytesFor(const LlamaConfig& config, int capacity, DType dtype = DType::kF16);
  // Whether dtype can hold a cache (f16, bf16, f32).
  static bool IsCacheType(DType dtype);

  // Converts and stores n positions' keys and values (float rows of n_kv_heads * head_dim) at
  // positions pos .. pos + n - 1 (< capacity).
  void Store(int layer, int pos, int n, const float* k, const float* v);
  // The layer's rows for attention.
  kernels::KVRows Rows(int layer) const;

 private:
  int capacity_ = 0;
  int size_ = 0;
  int64_t row_ = 0;  // elements per position
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

}  // namespace herd
