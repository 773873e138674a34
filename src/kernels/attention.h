// Causal self-attention with grouped-query heads (GQA: query head h reads kv head
// h / (n_heads / n_kv_heads)), scaled by 1/sqrt(head_dim).
#pragma once

#include <cstdint>

#include "base/thread_pool.h"

namespace herd::kernels {

struct AttentionShape {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
};

// Query t sits at position start_pos + t and attends to positions [0, start_pos + t].
// q:    [n_tokens, n_heads * head_dim]
// k, v: [>= start_pos + n_tokens, n_kv_heads * head_dim], position-major (a KV cache)
// out:  [n_tokens, n_heads * head_dim]
// Work is split over (token, head) pairs; the score row is a per-thread buffer of
// start_pos + n_tokens floats.
void Attention(const float* q, const float* k, const float* v, int64_t n_tokens, int64_t start_pos,
               const AttentionShape& shape, float* out, ThreadPool* pool);

}  // namespace herd::kernels
