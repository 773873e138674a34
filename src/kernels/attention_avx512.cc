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

constexpr int kMaxDim = kMaxHeadDimForBlocks;

inline __m512 Load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 Load16(const F16Elem* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 Load16(const BF16Elem* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// One key tile for H (1 or 2) query heads of a token (consecutive rows of q and out): scores,
// the streaming softmax update and the weighted values. Two heads share every key and value load
// and interleave their FMA chains; each score's and each output element's own chain runs in the
// same order as for one head, so the results do not depend on the pairing.
template <int kChunks, int H>
void HeadPair(const float* qh, float* oh, const float* kt, const float* vt, int blocks, int n,
              float scale, float* max, float* sum) {
  constexpr int d = kChunks * 16;
  alignas(64) float scores[H][kTile];
  __m512 acc[H][kTile / 16];
  for (int h = 0; h < H; ++h)
    for (int jb = 0; jb < kTile / 16; ++jb) acc[h][jb] = _mm512_setzero_ps();
  for (int i = 0; i < d; ++i) {
    __m512 qi[H];
    for (int h = 0; h < H; ++h) qi[h] = _mm512_set1_ps(qh[h * d + i]);
    const float* ki = kt + i * kTile;
    for (int jb = 0; jb < kTile / 16; ++jb) {
      if (jb >= blocks) break;
      const __m512 k = _mm512_load_ps(ki + jb * 16);
      for (int h = 0; h < H; ++h) acc[h][jb] = _mm512_fmadd_ps(qi[h], k, acc[h][jb]);
    }
  }
  for (int h = 0; h < H; ++h) {
    // The tile's maximum over its n keys (the zero-padded lanes past n masked out): max is exact,
    // so any order gives the scalar loop's value.
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int jb = 0; jb < blocks; ++jb) {
      const __m512 sc = _mm512_mul_ps(acc[h][jb], _mm512_set1_ps(scale));
      _mm512_store_ps(scores[h] + jb * 16, sc);
      const int valid = n - jb * 16;
      const __mmask16 m = valid >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << valid) - 1);
      vmax = _mm512_mask_max_ps(vmax, m, vmax, sc);
    }
    const float tile_max = _mm512_reduce_max_ps(vmax);
    float* o = oh + h * d;
    if (tile_max > max[h]) {  // rescale what was summed under the old maximum
      const float cr = max[h] == -INFINITY ? 0.0f : std::exp(max[h] - tile_max);
      sum[h] *= cr;
      for (int i = 0; i < d; ++i) o[i] *= cr;
      max[h] = tile_max;
    }
    sum[h] += static_cast<float>(ExpShiftSum(scores[h], n, max[h], scores[h]));
  }
  __m512 out_acc[H][kChunks];
  for (int h = 0; h < H; ++h)
    for (int c = 0; c < kChunks; ++c) out_acc[h][c] = _mm512_loadu_ps(oh + h * d + c * 16);
  for (int j = 0; j < n; ++j) {
    __m512 pj[H];
    for (int h = 0; h < H; ++h) pj[h] = _mm512_set1_ps(scores[h][j]);
    for (int c = 0; c < kChunks; ++c) {
      const __m512 v = _mm512_load_ps(vt + j * d + c * 16);
      for (int h = 0; h < H; ++h) out_acc[h][c] = _mm512_fmadd_ps(pj[h], v, out_acc[h][c]);
    }
  }
  for (int h = 0; h < H; ++h)
    for (int c = 0; c < kChunks; ++c) _mm512_storeu_ps(oh + h * d + c * 16, out_acc[h][c]);
}

// Tokens [t0, t0 + nt) (nt <= kAttentionBlock) of kv head kvh, query heads [g0, g0 + group): each
// tile's keys and values are converted once for all nt x group query rows. A row's arithmetic
// does not depend on the other rows (its scores, maximum, sums and value FMAs are over its own
// keys, in key order), so a token gives the same bits alone or in a block.
template <typename T, int kChunks>
void BlockHeads(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s,
                float* out, int64_t t0, int nt, int kvh, int g0, int group) {
  const int heads_per_kv = s.n_heads / s.n_kv_heads, d = kChunks * 16, chunks = kChunks;
  const int64_t q_stride = int64_t{s.n_heads} * d;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  const T* k = static_cast<const T*>(kv.k);
  const T* v = static_cast<const T*>(kv.v);
  alignas(64) float kt[kMaxDim * kTile];  // kt[i * kTile + j]: dimension i of the tile's key j
  alignas(64) float vt[kTile * kMaxDim];  // vt[j * d + i]: the tile's value j
  const int64_t first_head = int64_t{kvh} * heads_per_kv + g0;
  float max[kAttentionBlock][kMaxGroup], sum[kAttentionBlock][kMaxGroup];
  for (int r = 0; r < nt; ++r) {
    for (int g = 0; g < group; ++g) max[r][g] = -INFINITY, sum[r][g] = 0;
    float* og = out + (t0 + r) * q_stride + first_head * d;
    std::fill(og, og + int64_t{group} * d, 0.0f);
  }
  const int64_t keys_end = start_pos + t0 + nt;  // the last token's keys
  for (int64_t j0 = 0; j0 < keys_end; j0 += kTile) {
    const int n_all = static_cast<int>(std::min<int64_t>(kTile, keys_end - j0));
    const int key_blocks = (n_all + 15) / 16;
    if (kv.k_blocked) {
      // Keys already stored transposed per 16 positions: one conversion per dimension (lanes
      // past the tile's end zeroed, as the transposes below leave them).
      const T* kb = k + kv.HeadOffset(kvh, d);
      for (int jb = 0; jb < key_blocks; ++jb) {
        const int valid = n_all - jb * 16;
        const __mmask16 m = valid >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << valid) - 1);
        const T* blk = kb + KVRows::KeyOffset(j0 + jb * 16, 0, d);
        for (int i = 0; i < d; ++i)
          _mm512_store_ps(kt + i * kTile + jb * 16, _mm512_maskz_mov_ps(m, Load16(blk + i * 16)));
      }
    }
    // Keys, transposed 16 x 16 at a time (keys past the tile's end are zeros).
    for (int jb = 0; jb < key_blocks && !kv.k_blocked; ++jb) {
      for (int c = 0; c < chunks; ++c) {
        __m512 r[16];
        for (int j = 0; j < 16; ++j) {
          const int64_t key = j0 + jb * 16 + j;
          r[j] = jb * 16 + j < n_all ? Load16(k + key * kv.stride + kv.HeadOffset(kvh, d) + c * 16)
                                     : _mm512_setzero_ps();
        }
        Transpose16(r);
        for (int i = 0; i < 16; ++i) _mm512_store_ps(kt + (c * 16 + i) * kTile + jb * 16, r[i]);
      }
    }
    // Values, converted once for the block.
    for (int j = 0; j < n_all; ++j) {
      const T* vj = v + (j0 + j) * kv.stride + kv.HeadOffset(kvh, d);
      for (int c = 0; c < chunks; ++c) _mm512_store_ps(vt + j * d + c * 16, Load16(vj + c * 16));
    }
    for (int r = 0; r < nt; ++r) {
      const int64_t n_keys = start_pos + t0 + r + 1;
      if (j0 >= n_keys) continue;  // the tile is past this token's keys
      const int n = static_cast<int>(std::min<int64_t>(kTile, n_keys - j0));
      const int blocks = (n + 15) / 16;
      const float* qg = q + (t0 + r) * q_stride + first_head * d;
      float* og = out + (t0 + r) * q_stride + first_head * d;
      for (int g = 0; g < group; g += 2) {
        if (g + 1 < group) {
          HeadPair<kChunks, 2>(qg + g * d, og + g * d, kt, vt, blocks, n, scale, &max[r][g],
                               &sum[r][g]);
        } else {
          HeadPair<kChunks, 1>(qg + g * d, og + g * d, kt, vt, blocks, n, scale, &max[r][g],
                               &sum[r][g]);
        }
      }
    }
  }
  for (int r = 0; r < nt; ++r) {
    float* og = out + (t0 + r) * q_stride + first_head * d;
    for (int g = 0; g < group; ++g) {
      const float inv = sum[r][g] > 0 ? 1.0f / sum[r][g] : 0.0f;
      for (int i = 0; i < d; ++i) og[g * d + i] *= inv;
    }
  }
}

template <typename T, int kChunks>
void BlockChunks(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s,
                 float* out, int64_t t0, int nt, int kvh) {
  const int heads_per_kv = s.n_heads / s.n_kv_heads;
  for (int g0 = 0; g0 < heads_per_kv; g0 += kMaxGroup)
    BlockHeads<T, kChunks>(q, kv, start_pos, s, out, t0, nt, kvh, g0,
                           std::min(kMaxGroup, heads_per_kv - g0));
}

// Head dims 16 .. 128 (HasAttentionBlock), one instantiation per 16-float chunk count.
template <typename T>
void Block(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s, float* out,
           int64_t t0, int nt, int kvh) {
  using Fn = void (*)(const float*, const KVRows&, int64_t, const AttentionShape&, float*, int64_t,
                      int, int);
  static constexpr Fn kByChunks[] = {BlockChunks<T, 1>, BlockChunks<T, 2>, BlockChunks<T, 3>,
                                     BlockChunks<T, 4>, BlockChunks<T, 5>, BlockChunks<T, 6>,
                                     BlockChunks<T, 7>, BlockChunks<T, 8>};
  kByChunks[s.head_dim / 16 - 1](q, kv, start_pos, s, out, t0, nt, kvh);
}

}  // namespace

bool HasAttentionBlock(const AttentionShape& s) {
  return s.head_dim % 16 == 0 && s.head_dim <= kMaxDim;
}

void AttentionBlock(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s,
                    float* out, int64_t t0, int nt, int kvh) {
  switch (kv.dtype) {
    case DType::kF16:
      return Block<F16Elem>(q, kv, start_pos, s, out, t0, nt, kvh);
    case DType::kBF16:
      return Block<BF16Elem>(q, kv, start_pos, s, out, t0, nt, kvh);
    default:
      return Block<float>(q, kv, start_pos, s, out, t0, nt, kvh);
  }
}

void AttentionRange(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s,
                    float* out, size_t item_begin, size_t item_end) {
  if (!HasAttentionBlock(s))
    return avx2::AttentionRange(q, kv, start_pos, s, out, item_begin, item_end);
  for (size_t item = item_begin; item < item_end; ++item) {
    AttentionBlock(q, kv, start_pos, s, out, static_cast<int64_t>(item) / s.n_kv_heads, 1,
                   static_cast<int>(item % s.n_kv_heads));
  }
}

}  // namespace herd::kernels::avx512
