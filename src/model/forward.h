// The Llama forward pass (cf. Meta's reference model.py), float32, multi-threaded:
//   h = embed(tokens)
//   for each layer:  h = h + Attention(RMSNorm(h)),  h = h + FeedForward(RMSNorm(h))
//   logits = output(RMSNorm(h))
// Attention: q, k, v projections, RoPE on q and k, append k and v to the sequence's KV cache,
// causal GQA attention, output projection. FeedForward: w2(silu(w1 x) * w3 x).
#pragma once

#include <span>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/load.h"

namespace herd {

// Keys and values of one sequence, per layer: [capacity, n_kv_heads * head_dim] float32.
class KVCache {
 public:
  KVCache(const LlamaConfig& config, int capacity);
  int capacity() const { return capacity_; }
  int size() const { return size_; }  // positions filled
  void Clear() { size_ = 0; }
  // Forgets positions >= n (n <= size()).
  void Truncate(int n);
  static uint64_t BytesFor(const LlamaConfig& config, int capacity);

  float* k(int layer, int pos) { return &k_[layer][static_cast<size_t>(pos) * row_]; }
  float* v(int layer, int pos) { return &v_[layer][static_cast<size_t>(pos) * row_]; }

 private:
  int capacity_ = 0;
  int size_ = 0;
  int64_t row_ = 0;
  std::vector<std::vector<float>> k_, v_;

 public:
  // Called by Forward once the new positions' keys and values are written.
  void Advance(int n) { size_ += n; }
};

// Runs `tokens` at positions cache->size() .. cache->size() + n - 1 and appends their keys and
// values to the cache. Writes logits for the last token ([vocab]) or, with all_logits, for every
// token ([n, vocab], row-major). Errors: a token id out of range, or the cache would overflow.
Status Forward(const Model& model, std::span<const int> tokens, KVCache* cache, bool all_logits,
               std::vector<float>* logits, ThreadPool* pool);

}  // namespace herd
