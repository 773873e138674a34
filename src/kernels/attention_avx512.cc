// AVX-512 attention (attention.h's streaming softmax over tiles of 64 keys, a GQA group's query
// heads together), restructured for wide registers: each tile's keys are converted to float once
// and transposed (16 x 16 register transposes) so that a head's 16 scores at a time are FMAs of
// broadcast query elements, with no horizontal sums; its values are converted once and each head
// accumulates them 16 dimensions per register. The AVX2 and scalar kernels convert every key and
// value once per head and reduce every score horizontally. Same algorithm, so results agree with
// them to float rounding (not bit for bit). Head dims that are not a multiple of 16 or above 128
// go to the AVX2 kernel.
#include <algorithm>
#include <cmath>

#include "kernels/attention.h"
#include "kernels/attention_impl.h"
#include "kernels/expsum.h"
#include "kernels/immintrin_avx512.h"
#include "kernels/transpose_avx512.h"

namespace herd::kernels::avx512 {
namespace {

using attention_impl::BF16Elem;
using attention_impl::F16Elem;
using attention_impl::kMaxGroup;
using attention_impl::kTile;

constexpr int kMaxDim = 128;

inline __m512 Load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 Load16(const F16Elem* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 Load16(const BF16Elem* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

template <typename T>
void RangeHeads(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s,
                float* out, size_t item_begin, size_t item_end, int g0, int group) {
  const int heads_per_kv = s.n_heads / s.n_kv_heads, d = s.head_dim, chunks = d / 16;
  const int64_t q_stride = int64_t{s.n_heads} * d;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  const T* k = static_cast<const T*>(kv.k);
  const T* v = static_cast<const T*>(kv.v);
  alignas(64) float kt[kMaxDim * kTile];  // kt[i * kTile + j]: dimension i of the tile's key j
  alignas(64) float vt[kTile * kMaxDim];  // vt[j * d + i]: the tile's value j
  alignas(64) float scores[kMaxGroup][kTile];
  for (size_t item = item_begin; item < item_end; ++item) {
    const int64_t t = static_cast<int64_t>(item) / s.n_kv_heads;
    const int kvh = static_cast<int>(item % s.n_kv_heads);
    const int64_t n_keys = start_pos + t + 1;
    const int64_t first_head = int64_t{kvh} * heads_per_kv + g0;
    const float* qg = q + t * q_stride + first_head * d;
    float* og = out + t * q_stride + first_head * d;
    float max[kMaxGroup], sum[kMaxGroup];
    for (int g = 0; g < group; ++g) max[g] = -INFINITY, sum[g] = 0;
    std::fill(og, og + int64_t{group} * d, 0.0f);
    for (int64_t j0 = 0; j0 < n_keys; j0 += kTile) {
      const int n = static_cast<int>(std::min<int64_t>(kTile, n_keys - j0));
      const int key_blocks = (n + 15) / 16;
      // Keys, transposed 16 x 16 at a time (keys past n are zeros).
      for (int jb = 0; jb < key_blocks; ++jb) {
        for (int c = 0; c < chunks; ++c) {
          __m512 r[16];
          for (int j = 0; j < 16; ++j) {
            const int64_t key = j0 + jb * 16 + j;
            r[j] = jb * 16 + j < n ? Load16(k + key * kv.stride + int64_t{kvh} * d + c * 16)
                                   : _mm512_setzero_ps();
          }
          Transpose16(r);
          for (int i = 0; i < 16; ++i) _mm512_store_ps(kt + (c * 16 + i) * kTile + jb * 16, r[i]);
        }
      }
      // Scores, 16 keys per register.
      for (int g = 0; g < group; ++g) {
        const float* qh = qg + g * d;
        for (int jb = 0; jb < key_blocks; ++jb) {
          __m512 acc = _mm512_setzero_ps();
          for (int i = 0; i < d; ++i)
            acc = _mm512_fmadd_ps(_mm512_set1_ps(qh[i]), _mm512_load_ps(kt + i * kTile + jb * 16),
                                  acc);
          _mm512_store_ps(scores[g] + jb * 16, _mm512_mul_ps(acc, _mm512_set1_ps(scale)));
        }
      }
      // Values, converted once for the group.
      for (int j = 0; j < n; ++j) {
        const T* vj = v + (j0 + j) * kv.stride + int64_t{kvh} * d;
        for (int c = 0; c < chunks; ++c) _mm512_store_ps(vt + j * d + c * 16, Load16(vj + c * 16));
      }
      for (int g = 0; g < group; ++g) {
        float tile_max = -INFINITY;
        for (int j = 0; j < n; ++j) tile_max = std::max(tile_max, scores[g][j]);
        float* oh = og + g * d;
        if (tile_max > max[g]) {  // rescale what was summed under the old maximum
          const float cr = max[g] == -INFINITY ? 0.0f : std::exp(max[g] - tile_max);
          sum[g] *= cr;
          for (int i = 0; i < d; ++i) oh[i] *= cr;
          max[g] = tile_max;
        }
        sum[g] += static_cast<float>(ExpShiftSum(scores[g], n, max[g], scores[g]));
        for (int c = 0; c < chunks; ++c) {
          __m512 acc = _mm512_loadu_ps(oh + c * 16);
          for (int j = 0; j < n; ++j)
            acc = _mm512_fmadd_ps(_mm512_set1_ps(scores[g][j]), _mm512_load_ps(vt + j * d + c * 16),
                                  acc);
          _mm512_storeu_ps(oh + c * 16, acc);
        }
      }
    }
    for (int g = 0; g < group; ++g) {
      const float inv = sum[g] > 0 ? 1.0f / sum[g] : 0.0f;
      for (int i = 0; i < d; ++i) og[g * d + i] *= inv;
    }
  }
}

template <typename T>
void Range(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s, float* out,
           size_t item_begin, size_t item_end) {
  const int heads_per_kv = s.n_heads / s.n_kv_heads;
  for (int g0 = 0; g0 < heads_per_kv; g0 += kMaxGroup)
    RangeHeads<T>(q, kv, start_pos, s, out, item_begin, item_end, g0,
                  std::min(kMaxGroup, heads_per_kv - g0));
}

}  // namespace

void AttentionRange(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s,
                    float* out, size_t item_begin, size_t item_end) {
  if (s.head_dim % 16 != 0 || s.head_dim > kMaxDim)
    return avx2::AttentionRange(q, kv, start_pos, s, out, item_begin, item_end);
  switch (kv.dtype) {
    case DType::kF16:
      return Range<F16Elem>(q, kv, start_pos, s, out, item_begin, item_end);
    case DType::kBF16:
      return Range<BF16Elem>(q, kv, start_pos, s, out, item_begin, item_end);
    default:
      return Range<float>(q, kv, start_pos, s, out, item_begin, item_end);
  }
}

}  // namespace herd::kernels::avx512
