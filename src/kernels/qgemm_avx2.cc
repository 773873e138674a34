// AVX2 kernels for qgemm.h (this file alone is compiled with -mavx2 -mfma -mf16c, and only called
// after CPUID reports them). A 256-bit register holds half a packed line: 4 consecutive elements of
// 8 rows. Without VNNI, vpmaddubsw (u8 x s8 -> pairs of int16) + vpmaddwd (pairs -> int32) form
// each row's 4-product sums: q4_0 / q4_K / q6_K levels are at most 63, so the int16 pair sums
// cannot saturate; q8_0's signed levels go through the sign trick (|w| times q_a with w's sign),
// whose pair sums are at most 2 * 128 * 127. The integer sums are exact and the float steps are the
// scalar reference's (qgemm.h), so the results equal the scalar kernels' bit for bit.

#include <immintrin.h>

#include <cstring>

#include "kernels/qdot.h"
#include "kernels/qgemm.h"

namespace herd::kernels::avx2 {

namespace {

using qgemm_impl::TileFn;
using qgemm_impl::Tiles;

inline __m256i Bcast(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

inline __m256i Half(const uint8_t* line, int h) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(line + 32 * h));
}

// 8 f16 scales as floats.
inline __m256 Scales8(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
}

// int32 lanes: sums of the 4 products of u8 w and s8 q (levels of w at most 63).
inline __m256i DotU8(__m256i w, __m256i q) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, q), _mm256_set1_epi16(1));
}

template <bool kQ8, int N>
void Blocks32N(const uint8_t* group, const QActs& a, int64_t t0, float* out, int64_t ldo) {
  const int64_t blocks = a.blocks;
  constexpr int64_t kBlockBytes = kQ8 ? 512 : 256;
  const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  for (int h = 0; h < 2; ++h) {
    __m256 acc[N];
    for (int i = 0; i < N; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* wb = Block32Lines(group, b, kBlockBytes);
      _mm_prefetch(reinterpret_cast<const char*>(wb + kDecodePrefetchBytes), _MM_HINT_T0);
      __m256i s[N];
      const int8_t* q[N];
      for (int i = 0; i < N; ++i) {
        const int64_t t = t0 + i;
        q[i] = reinterpret_cast<const int8_t*>(a.q + t * a.row_bytes + b * kQ8_0Bytes + 2);
        s[i] = kQ8 ? _mm256_setzero_si256() : _mm256_set1_epi32(a.sum[(t * blocks + b) * 2 + 1]);
      }
      if constexpr (kQ8) {
        for (int j = 0; j < 8; ++j) {
          const __m256i w = _mm256_xor_si256(Half(wb + 64 * j, h), _mm256_set1_epi8(-128));
          const __m256i aw = _mm256_abs_epi8(w);
          for (int i = 0; i < N; ++i) {
            const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(Bcast(q[i] + 4 * j), w));
            s[i] = _mm256_add_epi32(s[i], _mm256_madd_epi16(p, ones));
          }
        }
      } else {
        for (int j = 0; j < 4; ++j) {
          const __m256i v = Half(wb + 64 * j, h);
          const __m256i lo = _mm256_and_si256(v, low4);
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
          for (int i = 0; i < N; ++i) {
            const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, Bcast(q[i] + 4 * j)),
                                               _mm256_maddubs_epi16(hi, Bcast(q[i] + 16 + 4 * j)));
            s[i] = _mm256_add_epi32(s[i], _mm256_madd_epi16(p, ones));
          }
        }
      }
      const __m256 dw = Scales8(Block32Scales(group, b, kBlockBytes) + 16 * h);
      for (int i = 0; i < N; ++i) {
        const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(a.scale[(t0 + i) * blocks + b]));
        acc[i] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(s[i]), acc[i]);
      }
    }
    for (int i = 0; i < N; ++i) _mm256_storeu_ps(out + i * ldo + 8 * h, acc[i]);
  }
}

template <int N>
void Q4KN(const uint8_t* group, const QActs& a, int64_t t0, float* out, int64_t ldo) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int h = 0; h < 2; ++h) {
    __m256 acc[N];
    for (int i = 0; i < N; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < a.blocks; ++b) {
      const uint8_t* o = group + b * kQ4KPackedBytes;
      const int8_t* q[N];
      for (int i = 0; i < N; ++i) {
        q[i] = reinterpret_cast<const int8_t*>(a.q + (t0 + i) * a.row_bytes + b * kQ8_KBytes + 4);
      }
      __m256i sumi[N];
      for (int i = 0; i < N; ++i) sumi[i] = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        __m256i lo_sum[N], hi_sum[N];
        for (int i = 0; i < N; ++i) lo_sum[i] = hi_sum[i] = _mm256_setzero_si256();
        for (int j = 0; j < 8; ++j) {
          const uint8_t* line = o + 320 + (8 * c + j) * 64;
          _mm_prefetch(reinterpret_cast<const char*>(line + kDecodePrefetchBytes), _MM_HINT_T0);
          const __m256i v = Half(line, h);
          const __m256i lo = _mm256_and_si256(v, low4);
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
          for (int i = 0; i < N; ++i) {
            lo_sum[i] = _mm256_add_epi32(lo_sum[i], DotU8(lo, Bcast(q[i] + 64 * c + 4 * j)));
            hi_sum[i] = _mm256_add_epi32(hi_sum[i], DotU8(hi, Bcast(q[i] + 64 * c + 32 + 4 * j)));
          }
        }
        __m128i raw;
        std::memcpy(&raw, o + 64 + (2 * c) * 16 + 8 * h, 8);
        const __m256i sc_lo = _mm256_cvtepu8_epi32(raw);
        std::memcpy(&raw, o + 64 + (2 * c + 1) * 16 + 8 * h, 8);
        const __m256i sc_hi = _mm256_cvtepu8_epi32(raw);
        for (int i = 0; i < N; ++i) {
          sumi[i] =
              _mm256_add_epi32(sumi[i], _mm256_add_epi32(_mm256_mullo_epi32(lo_sum[i], sc_lo),
                                                         _mm256_mullo_epi32(hi_sum[i], sc_hi)));
        }
      }
      const __m256 d = Scales8(o + 16 * h), dmin = Scales8(o + 32 + 16 * h);
      for (int i = 0; i < N; ++i) {
        const int64_t t = t0 + i;
        const int32_t* side = a.sum + (t * a.blocks + b) * 20;
        __m256i summ = _mm256_setzero_si256();
        for (int p = 0; p < 4; ++p) {
          const __m256i m = _mm256_cvtepu8_epi16(
              _mm_load_si128(reinterpret_cast<const __m128i*>(o + 192 + p * 32 + 16 * h)));
          summ = _mm256_add_epi32(summ, _mm256_madd_epi16(m, _mm256_set1_epi32(side[p])));
        }
        const __m256 da = _mm256_set1_ps(a.scale[t * a.blocks + b]);
        acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(d, da), _mm256_cvtepi32_ps(sumi[i]), acc[i]);
        acc[i] = _mm256_fnmadd_ps(_mm256_mul_ps(dmin, da), _mm256_cvtepi32_ps(summ), acc[i]);
      }
    }
    for (int i = 0; i < N; ++i) _mm256_storeu_ps(out + i * ldo + 8 * h, acc[i]);
  }
}

template <int N>
void Q6KN(const uint8_t* group, const QActs& a, int64_t t0, float* out, int64_t ldo) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(0x30);
  for (int h = 0; h < 2; ++h) {
    __m256 acc[N];
    for (int i = 0; i < N; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < a.blocks; ++b) {
      const uint8_t* o = group + b * kQ6KPackedBytes;
      const int8_t* q[N];
      const int32_t* side[N];
      for (int i = 0; i < N; ++i) {
        q[i] = reinterpret_cast<const int8_t*>(a.q + (t0 + i) * a.row_bytes + b * kQ8_KBytes + 4);
        side[i] = a.sum + ((t0 + i) * a.blocks + b) * 20 + 4;
      }
      __m256i sumi[N];
      for (int i = 0; i < N; ++i) sumi[i] = _mm256_setzero_si256();
      for (int p = 0; p < 8; ++p) {
        const uint8_t* pair = o + 320 + p * 384;
        const int s0 = 2 * p, s1 = 2 * p + 1;
        __m256i sum0[N], sum1[N];
        for (int i = 0; i < N; ++i) {
          sum0[i] = _mm256_set1_epi32(-32 * side[i][s0]);
          sum1[i] = _mm256_set1_epi32(-32 * side[i][s1]);
        }
        _mm_prefetch(reinterpret_cast<const char*>(pair + kDecodePrefetchBytes), _MM_HINT_T0);
        const __m256i h0 = Half(pair + 256, h), h1 = Half(pair + 320, h);
        for (int l = 0; l < 4; ++l) {
          const __m256i v = Half(pair + 64 * l, h);
          const int shift = 4 - 2 * l;  // high bits 2l, 2l + 1 to bits 4, 5
          const __m256i b0 = shift >= 0 ? _mm256_slli_epi16(h0, shift) : _mm256_srli_epi16(h0, 2);
          const __m256i b1 = shift >= 0 ? _mm256_slli_epi16(h1, shift) : _mm256_srli_epi16(h1, 2);
          const __m256i w0 = _mm256_or_si256(_mm256_and_si256(v, low4), _mm256_and_si256(b0, two));
          const __m256i w1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4),
                                             _mm256_and_si256(b1, two));
          for (int i = 0; i < N; ++i) {
            sum0[i] = _mm256_add_epi32(sum0[i], DotU8(w0, Bcast(q[i] + 16 * s0 + 4 * l)));
            sum1[i] = _mm256_add_epi32(sum1[i], DotU8(w1, Bcast(q[i] + 16 * s1 + 4 * l)));
          }
        }
        __m128i raw;
        std::memcpy(&raw, o + 32 + s0 * 16 + 8 * h, 8);
        const __m256i sc0 = _mm256_cvtepi8_epi32(raw);
        std::memcpy(&raw, o + 32 + s1 * 16 + 8 * h, 8);
        const __m256i sc1 = _mm256_cvtepi8_epi32(raw);
        for (int i = 0; i < N; ++i) {
          sumi[i] = _mm256_add_epi32(sumi[i], _mm256_add_epi32(_mm256_mullo_epi32(sum0[i], sc0),
                                                               _mm256_mullo_epi32(sum1[i], sc1)));
        }
      }
      const __m256 d = Scales8(o + 16 * h);
      for (int i = 0; i < N; ++i) {
        const __m256 dd = _mm256_mul_ps(d, _mm256_set1_ps(a.scale[(t0 + i) * a.blocks + b]));
        acc[i] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(sumi[i]), acc[i]);
      }
    }
    for (int i = 0; i < N; ++i) _mm256_storeu_ps(out + i * ldo + 8 * h, acc[i]);
  }
}

constexpr TileFn kQ8_0Fns[] = {Blocks32N<true, 1>, Blocks32N<true, 2>, Blocks32N<true, 3>,
                               Blocks32N<true, 4>};
constexpr TileFn kQ4_0Fns[] = {Blocks32N<false, 1>, Blocks32N<false, 2>, Blocks32N<false, 3>,
                               Blocks32N<false, 4>};
constexpr TileFn kQ4KFns[] = {Q4KN<1>, Q4KN<2>};
constexpr TileFn kQ6KFns[] = {Q6KN<1>, Q6KN<2>};

}  // namespace

QGemmKernel GetQGemmKernel(DType t) {
  switch (t) {
    case DType::kQ8_0:
      return {Tiles<4, kQ8_0Fns>, 4};
    case DType::kQ4_0:
      return {Tiles<4, kQ4_0Fns>, 4};
    case DType::kQ4_K:
      return {Tiles<2, kQ4KFns>, 2};
    case DType::kQ6_K:
      return {Tiles<2, kQ6KFns>, 2};
    default:
      return {};
  }
}

}  // namespace herd::kernels::avx2
