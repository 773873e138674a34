// AVX-512 K-quant kernels (as qdot_kquant.h's, reached through qdot_avx512.cc; compiled with
// -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma -mf16c, called only after CPUID reports AVX-512
// F+BW+VL; VNNI's vpdpwssd is inline assembly in the variants used only where it reports VNNI,
// as in qdot_avx512.cc).
//
// Each kernel computes exactly what its AVX2 kernel computes (qdot_kquant_avx2.cc), bit for bit.
// Per super-block the AVX2 kernels form 8 exact int32 lane sums, lane k holding elements 4k..4k+3
// of every 32-element piece times that piece's scale, and then do one FMA by d_w * d_a. Here a
// 512-bit register holds two such 32-element pieces (two q4_K / q5_K sub-blocks, or two q6_K
// quarters) next to each other: vpmaddubsw, then the scales per int16 lane with VNNI's vpdpwssd
// (multiply, add pairs and accumulate in one instruction; vpmaddwd + vpaddd without VNNI). At the
// end the upper 8 lanes are added to the lower 8, which gives AVX2's lane sums exactly (integers),
// and from there the float steps are AVX2's. q4_K / q5_K's minimum term is AVX2's code as it is.
// The Q8_K quantiser is AVX2's (it writes the reference bytes; a small share of the time).

#include <cmath>
#include <cstring>

#include "kernels/immintrin_avx512.h"
#include "kernels/kquant.h"
#include "kernels/qdot_kquant.h"

namespace herd::kernels::avx512 {
namespace {

constexpr int kQ4KBytes = 144, kQ5KBytes = 176, kQ6KBytes = 210;
constexpr int kQAt = 4, kBsumsAt = 4 + kQK_K;  // offsets inside a Q8_K block

inline float Half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}
inline float LoadF32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
inline __m128i Load16(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}
inline __m256i Load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline __m512i Load64(const uint8_t* p) {
  return _mm512_loadu_si512(reinterpret_cast<const void*>(p));
}

// The AVX2 kernels' horizontal sums.
inline float Hsum(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}
inline float Hsum(__m128 v) {
  __m128 m = _mm_add_ps(v, _mm_movehl_ps(v, v));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// Lanes 0..7 plus lanes 8..15: the AVX2 kernels' 8 lane sums.
inline __m256i Fold(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

// sum + the int32 pair sums of p * scales (int16 lanes).
template <bool kVnni>
inline __m512i AddScaled(__m512i sum, __m512i p, __m512i scales) {
  if constexpr (kVnni) {
    asm("vpdpwssd %[scales], %[p], %[sum]" : [sum] "+v"(sum) : [p] "v"(p), [scales] "v"(scales));
    return sum;
  } else {
    return _mm512_add_epi32(sum, _mm512_madd_epi16(p, scales));
  }
}

// ---- q4_K / q5_K ----

// The 12 scale bytes -> 16 bytes: sc[0..7], then m[0..7], the bytes qdot_kquant_avx2.cc's
// UnpackScalesMins computes with scalar code: with u0, u1, u2 the little-endian 32-bit words of
// the scales, [sc_lo, sc_hi, m_lo, m_hi] = [u0 & 0x3f.., (u2 & 0x0f..) | ((u0 >> 2) & 0x30..),
// u1 & 0x3f.., ((u2 >> 4) & 0x0f..) | ((u1 >> 2) & 0x30..)] (sc / m of sub-blocks 0..3, 4..7).
// The 16-byte load reads 4 bytes past the scales, inside the block, and drops them.
inline __m128i UnpackScalesMins(const uint8_t* scales) {
  const __m128i u = Load16(scales);
  const __m128i low = _mm_and_si128(
      _mm_srlv_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4)),
      _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  const __m128i high = _mm_srli_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0)), 2);
  // low | (high & mask)
  return _mm_ternarylogic_epi32(low, high, _mm_setr_epi32(0, 0x30303030, 0, 0x30303030), 0xf8);
}

// The vpshufb control giving int16 lanes of 128-bit lanes 0, 1 the scale of sub-block 2g and of
// lanes 2, 3 that of 2g + 1, from sc[0..7] (int16) repeated in every 128-bit lane.
inline __m512i PickPair(int g) {
  const int16_t lo = static_cast<int16_t>((4 * g + 1) << 8 | 4 * g);
  const int16_t hi = static_cast<int16_t>((4 * g + 3) << 8 | (4 * g + 2));
  return _mm512_inserti64x4(_mm512_set1_epi16(lo), _mm256_set1_epi16(hi), 1);
}

// The 64 unsigned levels of sub-blocks 2g (bytes 0..31) and 2g + 1 (bytes 32..63).
struct LevelsQ4_K {
  const uint8_t* qs;
  explicit LevelsQ4_K(const uint8_t* blk) : qs(blk + 16) {}
  __m512i Pair(int g) const {
    // Group g's 32 bytes twice; the upper copy's low nibbles are sub-block 2g + 1's after >> 4.
    const __m512i v = _mm512_broadcast_i64x4(Load32(qs + 32 * g));
    return _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xffff0000u, v, 4), _mm512_set1_epi8(0x0f));
  }
};
// The fifth bit of sub-block s, element i, is bit s of qh[i]: bits 2g and 2g + 1 of the same 32
// bytes for the two halves.
struct LevelsQ5_K {
  const uint8_t* qs;
  __m512i qh;
  explicit LevelsQ5_K(const uint8_t* blk)
      : qs(blk + 48), qh(_mm512_broadcast_i64x4(Load32(blk + 16))) {}
  __m512i Pair(int g) const {
    const __m512i v = _mm512_broadcast_i64x4(Load32(qs + 32 * g));
    const __m512i nib =
        _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xffff0000u, v, 4), _mm512_set1_epi8(0x0f));
    const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << (2 * g))),
                                           _mm256_set1_epi8(static_cast<char>(2 << (2 * g))), 1);
    return _mm512_mask_add_epi8(nib, _mm512_test_epi8_mask(qh, bit), nib, _mm512_set1_epi8(0x10));
  }
};

// The minimum term of one super-block as AVX2 computes it: m[s] * (bsums[2s] + bsums[2s + 1]).
inline __m128 MinTerm(const uint8_t* a, __m128i m16) {
  const __m128i sub_sums = _mm_hadd_epi16(Load16(a + kBsumsAt), Load16(a + kBsumsAt + 16));
  return _mm_cvtepi32_ps(_mm_madd_epi16(sub_sums, m16));
}

// Prefetches the lines of the super-block kDecodePrefetchBytes ahead (1-token kernels).
template <int kBytes>
inline void PrefetchAhead(const uint8_t* w) {
  for (int o = 0; o < kBytes; o += 64)
    _mm_prefetch(reinterpret_cast<const char*>(w + kDecodePrefetchBytes + o), _MM_HINT_T0);
}

template <bool kVnni, int kBytes, class Levels>
float DotAffineK(int64_t n, const uint8_t* w, const uint8_t* act) {
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_min = _mm_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b, w += kBytes, act += kQ8_KBytes) {
    PrefetchAhead<kBytes>(w);
    const float d_a = LoadF32(act);
    const __m256i sm16 = _mm256_cvtepu8_epi16(UnpackScalesMins(w + 4));  // sc | m as int16
    acc_min = _mm_fmadd_ps(_mm_set1_ps(Half(w + 2) * d_a),
                           MinTerm(act, _mm256_extracti128_si256(sm16, 1)), acc_min);
    const __m512i scales = _mm512_broadcast_i32x4(_mm256_castsi256_si128(sm16));
    const uint8_t* q8 = act + kQAt;
    const Levels levels(w);
    __m512i sum = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
      const __m512i p = _mm512_maddubs_epi16(levels.Pair(g), Load64(q8 + 64 * g));
      sum = AddScaled<kVnni>(sum, p, _mm512_shuffle_epi8(scales, PickPair(g)));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(Half(w) * d_a), _mm256_cvtepi32_ps(Fold(sum)), acc);
  }
  return Hsum(acc) - Hsum(acc_min);
}

// 4 tokens: levels and scales decoded once per super-block; each token's steps are DotAffineK's.
template <bool kVnni, int kBytes, class Levels>
void DotAffineK4(int64_t n, const uint8_t* w, const uint8_t* act, uint64_t stride, float* out) {
  constexpr int kC = 4;
  __m256 acc[kC];
  __m128 acc_min[kC];
  for (int c = 0; c < kC; ++c) acc[c] = _mm256_setzero_ps(), acc_min[c] = _mm_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b, w += kBytes) {
    const __m256i sm16 = _mm256_cvtepu8_epi16(UnpackScalesMins(w + 4));
    const __m128i m16 = _mm256_extracti128_si256(sm16, 1);
    const __m512i scales = _mm512_broadcast_i32x4(_mm256_castsi256_si128(sm16));
    const float dw = Half(w), mw = Half(w + 2);
    const uint8_t* a[kC];
    __m512i sum[kC];
    for (int c = 0; c < kC; ++c) {
      a[c] = act + c * stride + b * kQ8_KBytes;
      acc_min[c] = _mm_fmadd_ps(_mm_set1_ps(mw * LoadF32(a[c])), MinTerm(a[c], m16), acc_min[c]);
      sum[c] = _mm512_setzero_si512();
    }
    const Levels levels(w);
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
      const __m512i lev = levels.Pair(g);
      const __m512i sc = _mm512_shuffle_epi8(scales, PickPair(g));
      for (int c = 0; c < kC; ++c) {
        const __m512i p = _mm512_maddubs_epi16(lev, Load64(a[c] + kQAt + 64 * g));
        sum[c] = AddScaled<kVnni>(sum[c], p, sc);
      }
    }
    for (int c = 0; c < kC; ++c)
      acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(dw * LoadF32(a[c])), _mm256_cvtepi32_ps(Fold(sum[c])),
                               acc[c]);
  }
  for (int c = 0; c < kC; ++c) out[c] = Hsum(acc[c]) - Hsum(acc_min[c]);
}

// ---- q6_K ----

// The 128-bit lane of each 16-bit element of a 512-bit register.
alignas(64) constexpr int16_t kLaneOf16[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                               2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};

// One super-block's decoded parts: per half h, the levels (0..63) of quarters 0, 1 (elements
// 128h + 0..63) and of quarters 2, 3 (128h + 64..127), and the 16 sub-block scales spread so that
// int16 lanes of 128-bit lane j carry the scale of the 16 elements in that lane.
struct Q6Block {
  __m512i q[2][2], scales[2][2];
  explicit Q6Block(const uint8_t* w, __m512i sc16) {
    const __m512i low4 = _mm512_set1_epi8(0x0f), high2 = _mm512_set1_epi8(0x30);
    // qh bits 2k, 2k + 1 of quarter k to bits 4, 5: quarters 0 | 1 shift left by 4 | 2, quarters
    // 2 | 3 right by 0 | 2 (word shifts: bits crossing bytes land outside the 0x30 mask).
    const __m512i shl01 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr23 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    for (int h = 0; h < 2; ++h) {
      const __m512i l = Load64(w + 64 * h);  // quarter 0's low bits | quarter 1's
      const __m512i hb = _mm512_broadcast_i64x4(Load32(w + 128 + 32 * h));
      q[h][0] = _mm512_or_si512(_mm512_and_si512(l, low4),
                                _mm512_and_si512(_mm512_sllv_epi16(hb, shl01), high2));
      q[h][1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), low4),
                                _mm512_and_si512(_mm512_srlv_epi16(hb, shr23), high2));
      for (int k = 0; k < 2; ++k) {
        // 16-bit element e of the result: scale 8h + 4k + e / 8.
        const __m512i idx = _mm512_add_epi16(_mm512_set1_epi16(static_cast<int16_t>(8 * h + 4 * k)),
                                             _mm512_load_si512(kLaneOf16));
        scales[h][k] = _mm512_permutexvar_epi16(idx, sc16);
      }
    }
  }
};

// The start of a token's int32 sums: -32 * sum_j scales[j] * bsums[j] in lanes 0..7, as AVX2.
inline __m512i Q6Offset(const uint8_t* a, __m256i sc16) {
  const __m256i offset = _mm256_madd_epi16(Load32(a + kBsumsAt), sc16);
  return _mm512_zextsi256_si512(
      _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(offset, 5)));
}

template <bool kVnni>
inline __m512i Q6Sum(const Q6Block& blk, const uint8_t* a, __m512i sum) {
  const uint8_t* q8 = a + kQAt;
  for (int h = 0; h < 2; ++h) {
    for (int k = 0; k < 2; ++k) {
      const __m512i p = _mm512_maddubs_epi16(blk.q[h][k], Load64(q8 + 128 * h + 64 * k));
      sum = AddScaled<kVnni>(sum, p, blk.scales[h][k]);
    }
  }
  return sum;
}

template <bool kVnni>
float DotQ6_K(int64_t n, const uint8_t* w, const uint8_t* act) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b, w += kQ6KBytes, act += kQ8_KBytes) {
    PrefetchAhead<kQ6KBytes>(w);
    const __m256i sc16 = _mm256_cvtepi8_epi16(Load16(w + 192));  // scales[0..15] as int16
    const Q6Block blk(w, _mm512_castsi256_si512(sc16));
    const __m512i sum = Q6Sum<kVnni>(blk, act, Q6Offset(act, sc16));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(Half(w + 208) * LoadF32(act)),
                          _mm256_cvtepi32_ps(Fold(sum)), acc);
  }
  return Hsum(acc);
}

template <bool kVnni>
void DotQ6_K4(int64_t n, const uint8_t* w, const uint8_t* act, uint64_t stride, float* out) {
  constexpr int kC = 4;
  __m256 acc[kC];
  for (int c = 0; c < kC; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b, w += kQ6KBytes) {
    const __m256i sc16 = _mm256_cvtepi8_epi16(Load16(w + 192));
    const Q6Block blk(w, _mm512_castsi256_si512(sc16));
    const float dw = Half(w + 208);
    for (int c = 0; c < kC; ++c) {
      const uint8_t* a = act + c * stride + b * kQ8_KBytes;
      const __m512i sum = Q6Sum<kVnni>(blk, a, Q6Offset(a, sc16));
      acc[c] =
          _mm256_fmadd_ps(_mm256_set1_ps(dw * LoadF32(a)), _mm256_cvtepi32_ps(Fold(sum)), acc[c]);
    }
  }
  for (int c = 0; c < kC; ++c) out[c] = Hsum(acc[c]);
}

template <bool kVnni>
DotKernel Kernel(DType t) {
  const Isa s = Isa::kAvx512;
  const QuantizeActFn q8_k = avx2::GetKQuantKernel(DType::kQ4_K).quantize;
  switch (t) {
    case DType::kQ4_K:
      return {ActFormat::kQ8_K, q8_k, DotAffineK<kVnni, kQ4KBytes, LevelsQ4_K>, s,
              DotAffineK4<kVnni, kQ4KBytes, LevelsQ4_K>};
    case DType::kQ5_K:
      return {ActFormat::kQ8_K, q8_k, DotAffineK<kVnni, kQ5KBytes, LevelsQ5_K>, s,
              DotAffineK4<kVnni, kQ5KBytes, LevelsQ5_K>};
    case DType::kQ6_K:
      return {ActFormat::kQ8_K, q8_k, DotQ6_K<kVnni>, s, DotQ6_K4<kVnni>};
    default:
      return {};
  }
}

}  // namespace

DotKernel GetKQuantKernel(DType t, bool vnni) { return vnni ? Kernel<true>(t) : Kernel<false>(t); }

}  // namespace herd::kernels::avx512
