// Causal self-attention with grouped-query heads (GQA: query head h reads kv head
// h / (n_heads / n_kv_heads)), scaled by 1/sqrt(head_dim).
//
// Streaming ("flash") softmax: keys are visited in tiles, keeping per query head a running
// maximum, a running sum of exponentials and the weighted sum of values, rescaled when the maximum
// grows; memory per thread is O(tile), not O(context). The query heads that share a kv head are
// processed together, so each key and value row is read once per group.
#pragma once

#include <cstdint>

#include "base/cpu.h"
#include "base/dtype.h"
#include "base/thread_pool.h"

namespace herd::kernels {

struct AttentionShape {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
};

// The largest head_dim the AVX-512 block kernels (and key-blocked caches) take.
inline constexpr int kMaxHeadDimForBlocks = 128;

// Keys and values as a KV cache holds them, in dtype f32, f16 or bf16: element i of kv head h at
// position j is at k + j * stride + HeadOffset(h, head_dim) + i (in elements). Position-major
// (head_stride 0: a position's n_kv_heads * head_dim elements together, stride = that row) or
// head-major (each kv head's positions together: stride = head_dim, head_stride = capacity *
// head_dim), which decode at long context reads as one stream per kv head.
struct KVRows {
  DType dtype = DType::kF32;
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t stride = 0;
  int64_t head_stride = 0;
  // Keys only, in a head-major cache read by the AVX-512 kernels (avx512::HasAttentionBlock
  // shapes): each kv head's keys in blocks of kKeyBlock positions stored transposed, element i of
  // position j at k + HeadOffset(h, head_dim) + KeyOffset(j, i, head_dim), so that a block's 16
  // keys are one vector per dimension (no transposes in attention). Values are not blocked.
  bool k_blocked = false;
  static constexpr int kKeyBlock = 16;
  int64_t HeadOffset(int kv_head, int head_dim) const {
    return int64_t{kv_head} * (head_stride ? head_stride : head_dim);
  }
  static int64_t KeyOffset(int64_t j, int i, int head_dim) {
    return j / kKeyBlock * kKeyBlock * head_dim + int64_t{i} * kKeyBlock + j % kKeyBlock;
  }
};

// Query t sits at position start_pos + t and attends to positions [0, start_pos + t].
// q:   [n_tokens, n_heads * head_dim]
// kv:  >= start_pos + n_tokens positions
// out: [n_tokens, n_heads * head_dim]
// Work is split over (token, kv head) pairs.
void Attention(const float* q, const KVRows& kv, int64_t n_tokens, int64_t start_pos,
               const AttentionShape& shape, float* out, ThreadPool* pool);
void Attention(const float* q, const KVRows& kv, int64_t n_tokens, int64_t start_pos,
               const AttentionShape& shape, float* out, ThreadPool* pool, Isa isa);

// Float keys and values (tests, callers without a cache).
void Attention(const float* q, const float* k, const float* v, int64_t n_tokens, int64_t start_pos,
               const AttentionShape& shape, float* out, ThreadPool* pool);

// Runs items [item_begin, item_end) of Attention's work, item = token * n_kv_heads + kv head (q
// and out point at token 0's row). What Attention runs on each thread, for callers that put many
// sequences' attention into one parallel loop (model/forward.cc's batched step).
using AttentionRangeFn = void (*)(const float* q, const KVRows& kv, int64_t start_pos,
                                  const AttentionShape& s, float* out, size_t item_begin,
                                  size_t item_end);
// The implementation Attention uses at `isa`.
AttentionRangeFn GetAttentionRange(Isa isa);

// The per-ISA implementations (attention_impl.h instantiated in attention.cc / attention_avx2.cc).
namespace scalar {
void AttentionRange(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s,
                    float* out, size_t item_begin, size_t item_end);
}
namespace avx2 {
void AttentionRange(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s,
                    float* out, size_t item_begin, size_t item_end);
}
// attention_avx512.cc: the same algorithm with keys transposed per tile (no horizontal sums).
namespace avx512 {
void AttentionRange(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s,
                    float* out, size_t item_begin, size_t item_end);
// Prefill: tokens [t0, t0 + nt) (nt <= kAttentionBlock) of kv head kvh at once, each key and
// value tile converted once for all of them; every token's result is the same bits as
// AttentionRange's item for it. Shapes with HasAttentionBlock only (head_dim a multiple of 16, at
// most 128).
inline constexpr int kAttentionBlock = 16;
bool HasAttentionBlock(const AttentionShape& s);
void AttentionBlock(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s,
                    float* out, int64_t t0, int nt, int kvh);
}  // namespace avx512

}  // namespace herd::kernels
