// AVX2 + FMA + F16C K-quant kernels (qdot_kquant.h; compiled with -mavx2 -mfma -mf16c, called only
// after CPUID says so). Q8_K quantisation writes the same bytes as the scalar reference. Dots, per
// super-block: the unsigned weight levels times the int8 activations with vpmaddubsw (pairs summed
// in int16, which cannot saturate: |level| <= 63 and |2 * 63 * 128| < 32768), then vpmaddwd with
// each 16-bit lane's sub-block scale, which multiplies and sums pairs into int32 in one step. The
// int32 sums over the whole super-block are exact (well below 2^31), so float enters only once per
// super-block: one FMA of the 8 int32 lanes (converted to float, exact below 2^24) by d_w * d_a.
// q6_K's level offset 32 comes from the activation's bsums inside those int32 sums; the q4_K /
// q5_K minimum term, m[s] times bsums, is summed in int32 too and takes one more FMA by
// dmin_w * d_a.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels/kquant.h"
#include "kernels/qdot_kquant.h"

namespace herd::kernels::avx2 {
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
inline __m256i Load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline __m128i Load16(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

inline float Hsum(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

// ---- Q8_K activation quantisation ----

// The 4 int32 vectors of 8 elements (in order) as 32 int8, saturating.
inline __m256i PackInt8(const __m256i n[4]) {
  const __m256i p16a = _mm256_packs_epi32(n[0], n[1]), p16b = _mm256_packs_epi32(n[2], n[3]);
  const __m256i p8 = _mm256_packs_epi16(p16a, p16b);  // lane-interleaved 4-byte groups
  return _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// The sums of the 8 groups of 16 int8 in v[0..3] (128 bytes), as 8 int16 in order.
inline __m128i GroupSums(const __m256i v[4]) {
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  __m256i s[4];  // 8 int32: sums of 4 bytes; low lane group 2k, high lane group 2k + 1
  for (int k = 0; k < 4; ++k) s[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, v[k]), ones16);
  // hadd within lanes: low lane groups 0, 2, 4, 6; high lane groups 1, 3, 5, 7.
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
  const __m256i ordered = _mm256_permutevar8x32_epi32(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  return _mm_packs_epi32(_mm256_castsi256_si128(ordered), _mm256_extracti128_si256(ordered, 1));
}

void QuantizeQ8_K(const float* x, int64_t n, uint8_t* act) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K, act += kQ8_KBytes) {
    // Largest magnitude: NaN is the second operand of maxps, so it never wins (as in the scalar
    // loop's "|x| > amax").
    __m256 amax8 = _mm256_setzero_ps();
    for (int i = 0; i < kQK_K; i += 8)
      amax8 = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), amax8);
    __m128 m = _mm_max_ps(_mm256_extractf128_ps(amax8, 1), _mm256_castps256_ps128(amax8));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    // The first element of that magnitude gives the sign (the scalar loop keeps the first).
    float max = 0;
    if (amax > 0) {
      const __m256 target = _mm256_set1_ps(amax);
      for (int i = 0; i < kQK_K; i += 8) {
        const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
        const int hits = _mm256_movemask_ps(_mm256_cmp_ps(a, target, _CMP_EQ_OQ));
        if (hits) {
          max = x[i + __builtin_ctz(static_cast<unsigned>(hits))];
          break;
        }
      }
    }
    const float iscale = -127.0f / max;
    if (!std::isfinite(iscale)) {
      std::memset(act, 0, kQ8_KBytes);
      continue;
    }
    const float d = 1.0f / iscale;
    std::memcpy(act, &d, 4);
    const __m256 is = _mm256_set1_ps(iscale);
    __m256i q[8];
    for (int g = 0; g < 8; ++g) {
      __m256i n32[4];
      for (int k = 0; k < 4; ++k) {
        const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 32 * g + 8 * k), is);
        n32[k] =
            _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      }
      q[g] = PackInt8(n32);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(act + kQAt + 32 * g), q[g]);
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(act + kBsumsAt), GroupSums(q));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(act + kBsumsAt + 16), GroupSums(q + 4));
  }
}

// ---- dots ----

// The vpshufb control that broadcasts 16-bit element s (0..7) of each 128-bit lane to the lane.
inline __m256i Pick(int s) {
  return _mm256_set1_epi16(static_cast<int16_t>((2 * s + 1) << 8 | 2 * s));
}

// q4_K / q5_K's 12 scale bytes -> 16 bytes: sc[0..7], then m[0..7] (6 bits each, kquant.h).
// Per byte lane: sc[s] = scales[s] & 63 and sc[s + 4] = (scales[s + 8] & 15) | (scales[s] >> 6)
// << 4 for s < 4, where (b >> 6) << 4 is (b >> 2) & 0x30 and the word shift only moves bits of
// the neighbouring byte into the masked-off bits; m likewise from scales[s + 4] and the high
// nibbles of scales[s + 8].
inline __m128i UnpackScalesMins(const uint8_t* scales) {
  uint32_t u[3];
  std::memcpy(u, scales, 12);
  const uint32_t sc_lo = u[0] & 0x3f3f3f3f, m_lo = u[1] & 0x3f3f3f3f;
  const uint32_t sc_hi = (u[2] & 0x0f0f0f0f) | ((u[0] >> 2) & 0x30303030);
  const uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0f) | ((u[1] >> 2) & 0x30303030);
  return _mm_setr_epi32(static_cast<int>(sc_lo), static_cast<int>(sc_hi), static_cast<int>(m_lo),
                        static_cast<int>(m_hi));
}

// The 32 unsigned levels of sub-blocks 2g and 2g + 1 of a q4_K / q5_K block (g = 0..3).
struct LevelsQ4_K {
  const uint8_t* qs;
  explicit LevelsQ4_K(const uint8_t* blk) : qs(blk + 16) {}
  void Pair(int g, __m256i* lo, __m256i* hi) {
    const __m256i v = Load32(qs + 32 * g), mask = _mm256_set1_epi8(0x0f);
    *lo = _mm256_and_si256(v, mask);
    *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
  }
};
// Fifth bit of sub-block s, element i: bit s of qh[i]. hb is shifted right once per sub-block, so
// bit 0 of each byte is always the current one (the 16-bit shift moves the neighbour's bits into
// bits 7.. of a byte, never bit 0 within 8 shifts).
struct LevelsQ5_K {
  const uint8_t* qs;
  __m256i hb;
  explicit LevelsQ5_K(const uint8_t* blk) : qs(blk + 48), hb(Load32(blk + 16)) {}
  __m256i NextBit() {
    const __m256i bit = _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(1)), 4);
    hb = _mm256_srli_epi16(hb, 1);
    return bit;
  }
  void Pair(int g, __m256i* lo, __m256i* hi) {
    const __m256i v = Load32(qs + 32 * g), mask = _mm256_set1_epi8(0x0f);
    *lo = _mm256_or_si256(_mm256_and_si256(v, mask), NextBit());
    *hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), mask), NextBit());
  }
};

template <int kBytes, class Levels>
float DotAffineK(int64_t n, const uint8_t* w, const uint8_t* act) {
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_min = _mm_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b, w += kBytes, act += kQ8_KBytes) {
    for (int o = 0; o < kBytes; o += 64)  // the super-block kDecodePrefetchBytes ahead
      _mm_prefetch(reinterpret_cast<const char*>(w + kDecodePrefetchBytes + o), _MM_HINT_T0);
    const float d_a = LoadF32(act);
    const __m256i sm16 = _mm256_cvtepu8_epi16(UnpackScalesMins(w + 4));  // sc | m as int16
    // Minimum term: m[s] * (bsums[2s] + bsums[2s + 1]), in int32.
    const __m128i sub_sums =
        _mm_hadd_epi16(Load16(act + kBsumsAt), Load16(act + kBsumsAt + 16));  // |.| <= 4096
    const __m128i mins = _mm_madd_epi16(sub_sums, _mm256_extracti128_si256(sm16, 1));
    acc_min = _mm_fmadd_ps(_mm_set1_ps(Half(w + 2) * d_a), _mm_cvtepi32_ps(mins), acc_min);
    // Scale term.
    const __m256i scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(sm16));
    const uint8_t* q8 = act + kQAt;
    Levels levels(w);
    __m256i sum = _mm256_setzero_si256();
    for (int g = 0; g < 4; ++g) {
      __m256i lo, hi;
      levels.Pair(g, &lo, &hi);
      const __m256i p0 = _mm256_maddubs_epi16(lo, Load32(q8 + 64 * g));
      const __m256i p1 = _mm256_maddubs_epi16(hi, Load32(q8 + 64 * g + 32));
      sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p0, _mm256_shuffle_epi8(scales, Pick(2 * g))));
      sum = _mm256_add_epi32(sum,
                             _mm256_madd_epi16(p1, _mm256_shuffle_epi8(scales, Pick(2 * g + 1))));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(Half(w) * d_a), _mm256_cvtepi32_ps(sum), acc);
  }
  __m128 m = _mm_add_ps(acc_min, _mm_movehl_ps(acc_min, acc_min));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return Hsum(acc) - _mm_cvtss_f32(m);
}

// 4 tokens at once (prefill): the levels and scales of each weight super-block are decoded once
// for 4 activation rows; each row's arithmetic is DotAffineK's, in the same order.
template <int kBytes, class Levels>
void DotAffineK4(int64_t n, const uint8_t* w, const uint8_t* act, uint64_t stride, float* out) {
  constexpr int kC = 4;
  __m256 acc[kC];
  __m128 acc_min[kC];
  for (int c = 0; c < kC; ++c) acc[c] = _mm256_setzero_ps(), acc_min[c] = _mm_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b, w += kBytes) {
    const __m256i sm16 = _mm256_cvtepu8_epi16(UnpackScalesMins(w + 4));
    const __m128i m16 = _mm256_extracti128_si256(sm16, 1);
    const __m256i scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(sm16));
    const float dw = Half(w), mw = Half(w + 2);
    const uint8_t* a[kC];
    __m256i sum[kC];
    for (int c = 0; c < kC; ++c) {
      a[c] = act + c * stride + b * kQ8_KBytes;
      const __m128i sub_sums =
          _mm_hadd_epi16(Load16(a[c] + kBsumsAt), Load16(a[c] + kBsumsAt + 16));
      const __m128i mins = _mm_madd_epi16(sub_sums, m16);
      acc_min[c] = _mm_fmadd_ps(_mm_set1_ps(mw * LoadF32(a[c])), _mm_cvtepi32_ps(mins), acc_min[c]);
      sum[c] = _mm256_setzero_si256();
    }
    Levels levels(w);
    for (int g = 0; g < 4; ++g) {
      __m256i lo, hi;
      levels.Pair(g, &lo, &hi);
      const __m256i s0 = _mm256_shuffle_epi8(scales, Pick(2 * g));
      const __m256i s1 = _mm256_shuffle_epi8(scales, Pick(2 * g + 1));
      for (int c = 0; c < kC; ++c) {
        const uint8_t* q8 = a[c] + kQAt;
        const __m256i p0 = _mm256_maddubs_epi16(lo, Load32(q8 + 64 * g));
        const __m256i p1 = _mm256_maddubs_epi16(hi, Load32(q8 + 64 * g + 32));
        sum[c] = _mm256_add_epi32(sum[c], _mm256_madd_epi16(p0, s0));
        sum[c] = _mm256_add_epi32(sum[c], _mm256_madd_epi16(p1, s1));
      }
    }
    for (int c = 0; c < kC; ++c)
      acc[c] =
          _mm256_fmadd_ps(_mm256_set1_ps(dw * LoadF32(a[c])), _mm256_cvtepi32_ps(sum[c]), acc[c]);
  }
  for (int c = 0; c < kC; ++c) {
    __m128 m = _mm_add_ps(acc_min[c], _mm_movehl_ps(acc_min[c], acc_min[c]));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    out[c] = Hsum(acc[c]) - _mm_cvtss_f32(m);
  }
}

// q6_K: the unsigned levels q (0..63) of each 32-element quarter k of a half (kquant.h) times the
// activations, minus 32 * sum_j(scales[j] * bsums[j]) for the offset.
float DotQ6_K(int64_t n, const uint8_t* w, const uint8_t* act) {
  // Low lane: 16-bit element 2k of the lane, high lane: 2k + 1 (the two 16-element sub-blocks of
  // quarter k).
  const __m256i pick[4] = {
      _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,  //
                       2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3),
      _mm256_setr_epi8(4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5,  //
                       6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7),
      _mm256_setr_epi8(8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9,  //
                       10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11),
      _mm256_setr_epi8(12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13,  //
                       14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15)};
  const __m256i low4 = _mm256_set1_epi8(0x0f), high2 = _mm256_set1_epi8(0x30);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK_K; ++b, w += kQ6KBytes, act += kQ8_KBytes) {
    for (int o = 0; o < kQ6KBytes; o += 64)  // the super-block kDecodePrefetchBytes ahead
      _mm_prefetch(reinterpret_cast<const char*>(w + kDecodePrefetchBytes + o), _MM_HINT_T0);
    const __m256i sc16 = _mm256_cvtepi8_epi16(Load16(w + 192));  // scales[0..15] as int16
    // -32 * sum_j scales[j] * bsums[j]  (|.| <= 2^24)
    const __m256i offset = _mm256_madd_epi16(Load32(act + kBsumsAt), sc16);
    __m256i sum = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(offset, 5));
    const uint8_t* q8 = act + kQAt;
    for (int h = 0; h < 2; ++h) {
      const __m128i half_scales =
          h == 0 ? _mm256_castsi256_si128(sc16) : _mm256_extracti128_si256(sc16, 1);
      const __m256i scales = _mm256_broadcastsi128_si256(half_scales);
      const __m256i l0 = Load32(w + 64 * h), l1 = Load32(w + 64 * h + 32);
      const __m256i hb = Load32(w + 128 + 32 * h);
      // Quarter k: low nibble of l0 / l1 (k < 2) or high nibble (k >= 2); high bits 2k, 2k + 1
      // of hb moved to bits 4, 5 (word shifts: bits crossing bytes land outside the 0x30 mask).
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(l0, low4),
                             _mm256_and_si256(_mm256_slli_epi16(hb, 4), high2));
      q[1] = _mm256_or_si256(_mm256_and_si256(l1, low4),
                             _mm256_and_si256(_mm256_slli_epi16(hb, 2), high2));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                             _mm256_and_si256(hb, high2));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                             _mm256_and_si256(_mm256_srli_epi16(hb, 2), high2));
      for (int k = 0; k < 4; ++k) {
        const __m256i p = _mm256_maddubs_epi16(q[k], Load32(q8 + 128 * h + 32 * k));
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, _mm256_shuffle_epi8(scales, pick[k])));
      }
    }
    acc =
        _mm256_fmadd_ps(_mm256_set1_ps(Half(w + 208) * LoadF32(act)), _mm256_cvtepi32_ps(sum), acc);
  }
  return Hsum(acc);
}

}  // namespace

DotKernel GetKQuantKernel(DType t) {
  const Isa s = Isa::kAvx2;
  switch (t) {
    case DType::kQ4_K:
      return {ActFormat::kQ8_K, QuantizeQ8_K, DotAffineK<kQ4KBytes, LevelsQ4_K>, s,
              DotAffineK4<kQ4KBytes, LevelsQ4_K>};
    case DType::kQ5_K:
      return {ActFormat::kQ8_K, QuantizeQ8_K, DotAffineK<kQ5KBytes, LevelsQ5_K>, s,
              DotAffineK4<kQ5KBytes, LevelsQ5_K>};
    case DType::kQ6_K:
      return {ActFormat::kQ8_K, QuantizeQ8_K, DotQ6_K, s};
    default:
      return {};
  }
}

}  // namespace herd::kernels::avx2
