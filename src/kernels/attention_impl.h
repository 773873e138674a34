// The attention algorithm of attention.h, written once over a small set of row operations that
// each ISA supplies (Ops::Dot, Ops::Axpy, Ops::Scale for keys/values of element type T). Included
// only by attention.cc (scalar) and attention_avx2.cc.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "base/check.h"
#include "kernels/attention.h"
#include "kernels/expsum.h"

namespace herd::kernels::attention_impl {

// Element types of a KV cache row (distinct types for the two 16-bit formats).
struct F16Elem {
  uint16_t bits;
};
struct BF16Elem {
  uint16_t bits;
};

// Keys per tile: the scores of a tile for a group of query heads fit in a small stack array.
constexpr int kTile = 64;
constexpr int kMaxGroup = 16;  // query heads handled together (Llama 3 groups: 4 or 8)

// Query heads [g0, g0 + group) of each item's kv head (group <= kMaxGroup).
template <typename Ops, typename T>
void AttentionRangeHeads(const float* q, const KVRows& kv, int64_t start_pos,
                         const AttentionShape& s, float* out, size_t item_begin, size_t item_end,
                         int g0, int group) {
  const int heads_per_kv = s.n_heads / s.n_kv_heads, d = s.head_dim;
  const int64_t q_stride = int64_t{s.n_heads} * d;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  const T* k = static_cast<const T*>(kv.k);
  const T* v = static_cast<const T*>(kv.v);
  for (size_t item = item_begin; item < item_end; ++item) {
    const int64_t t = static_cast<int64_t>(item) / s.n_kv_heads;
    const int kvh = static_cast<int>(item % s.n_kv_heads);
    const int64_t n_keys = start_pos + t + 1;
    const int64_t first_head = int64_t{kvh} * heads_per_kv + g0;
    const float* qg = q + t * q_stride + first_head * d;  // the heads' queries, adjacent
    float* og = out + t * q_stride + first_head * d;
    float max[kMaxGroup], sum[kMaxGroup];
    for (int g = 0; g < group; ++g) max[g] = -INFINITY, sum[g] = 0;
    std::fill(og, og + int64_t{group} * d, 0.0f);
    float scores[kMaxGroup][kTile];
    for (int64_t j0 = 0; j0 < n_keys; j0 += kTile) {
      const int n = static_cast<int>(std::min<int64_t>(kTile, n_keys - j0));
      for (int j = 0; j < n; ++j) {
        const T* kj = k + (j0 + j) * kv.stride + kv.HeadOffset(kvh, d);
        for (int g = 0; g < group; ++g) scores[g][j] = Ops::Dot(qg + g * d, kj, d) * scale;
      }
      for (int g = 0; g < group; ++g) {
        float tile_max = -INFINITY;
        for (int j = 0; j < n; ++j) tile_max = std::max(tile_max, scores[g][j]);
        if (tile_max > max[g]) {  // rescale what was summed under the old maximum
          const float c = max[g] == -INFINITY ? 0.0f : std::exp(max[g] - tile_max);
          sum[g] *= c;
          Ops::Scale(og + g * d, c, d);
          max[g] = tile_max;
        }
        // exp(score - max) in place, vectorised (kernels/expsum.h: the same bits at every ISA
        // level); the tile's sum is added once.
        sum[g] += static_cast<float>(ExpShiftSum(scores[g], n, max[g], scores[g]));
      }
      for (int j = 0; j < n; ++j) {
        const T* vj = v + (j0 + j) * kv.stride + kv.HeadOffset(kvh, d);
        for (int g = 0; g < group; ++g) Ops::Axpy(scores[g][j], vj, og + g * d, d);
      }
    }
    for (int g = 0; g < group; ++g) Ops::Scale(og + g * d, sum[g] > 0 ? 1.0f / sum[g] : 0.0f, d);
  }
}

// Items [item_begin, item_end): item = token * n_kv_heads + kv head. The query heads of a kv head
// are processed kMaxGroup at a time (all at once for Llama 3's groups).
template <typename Ops, typename T>
void AttentionRange(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s,
                    float* out, size_t item_begin, size_t item_end) {
  const int heads_per_kv = s.n_heads / s.n_kv_heads;
  for (int g0 = 0; g0 < heads_per_kv; g0 += kMaxGroup) {
    AttentionRangeHeads<Ops, T>(q, kv, start_pos, s, out, item_begin, item_end, g0,
                                std::min(kMaxGroup, heads_per_kv - g0));
  }
}

// Dispatches on the cache's element type; Ops<T> supplies the row operations.
template <template <typename> class Ops>
void AttentionRangeAnyType(const float* q, const KVRows& kv, int64_t start_pos,
                           const AttentionShape& s, float* out, size_t begin, size_t end) {
  CHECK(!kv.k_blocked);  // the AVX-512 block kernels' layout (KVCache makes it only for them)
  switch (kv.dtype) {
    case DType::kF16:
      return AttentionRange<Ops<F16Elem>, F16Elem>(q, kv, start_pos, s, out, begin, end);
    case DType::kBF16:
      return AttentionRange<Ops<BF16Elem>, BF16Elem>(q, kv, start_pos, s, out, begin, end);
    default:
      return AttentionRange<Ops<float>, float>(q, kv, start_pos, s, out, begin, end);
  }
}

}  // namespace herd::kernels::attention_impl
