// AVX2 + FMA + F16C kernels for qdot.h (this file alone is compiled with -mavx2 -mfma -mf16c and
// only called after CPUID says so). Block dots: the 32 int8 x int8 (or uint8 x int8) products of a
// block are summed exactly in int32 lanes (vpmaddubsw + vpmaddwd: lane k holds elements
// 4k..4k+3), converted to float and accumulated with the block's scale product by FMA; one
// horizontal sum at the end.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels/convert.h"
#include "kernels/qdot.h"
#include "kernels/qdot_kquant.h"

namespace herd::kernels::avx2 {
namespace {

constexpr int kQK = kQ8Block;

inline float Half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline float Hsum(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

inline __m256i Load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// 16 bytes of nibbles -> 32 bytes 0..15 in element order (low nibbles, then high nibbles).
inline __m256i Nibbles(const uint8_t* qs) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// Bit j of the little-endian u32 at p -> byte j = 0x10 if set, else 0.
inline __m256i FifthBits(const uint8_t* p) {
  uint32_t bits;
  std::memcpy(&bits, p, 4);
  const __m256i pick = _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101,
                                          0x0202020202020202, 0x0303030303030303);
  const __m256i mask = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), pick);
  v = _mm256_cmpeq_epi8(_mm256_and_si256(v, mask), mask);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

// Sums of 4 adjacent products u[i] * s[i] (u unsigned, s signed) as 8 floats.
inline __m256 DotU8S8(__m256i u, __m256i s) {
  const __m256i pairs = _mm256_maddubs_epi16(u, s);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}
// The same for two signed vectors: |x| * (y with x's sign).
inline __m256 DotS8S8(__m256i x, __m256i y) {
  return DotU8S8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// ---- activation quantisation (bytes identical to the scalar reference) ----

// Quantises one 32-element block; returns d, writes q and (if sum) the integer sum of q.
inline float QuantizeBlock(const float* x, uint8_t* q, int* sum) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  __m256 amax = _mm256_setzero_ps();
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_loadu_ps(x + 8 * i);
    amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
  }
  __m128 m = _mm_max_ps(_mm256_extractf128_ps(amax, 1), _mm256_castps256_ps128(amax));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  const float max = _mm_cvtss_f32(m);
  const float d = max / 127.0f;
  const __m256 id = _mm256_set1_ps(max != 0 ? 127.0f / max : 0.0f);
  __m256i n[4];
  for (int i = 0; i < 4; ++i) {
    const __m256 r =
        _mm256_round_ps(_mm256_mul_ps(v[i], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    n[i] = _mm256_cvtps_epi32(r);
  }
  if (sum) {
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(n[0], n[1]), _mm256_add_epi32(n[2], n[3]));
    __m128i t = _mm_add_epi32(_mm256_extracti128_si256(s, 1), _mm256_castsi256_si128(s));
    t = _mm_add_epi32(t, _mm_unpackhi_epi64(t, t));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 1));
    *sum = _mm_cvtsi128_si32(t);
  }
  // Pack 4 x 8 int32 to 32 int8 (saturating), then undo the lane interleave of the packs.
  const __m256i p16a = _mm256_packs_epi32(n[0], n[1]), p16b = _mm256_packs_epi32(n[2], n[3]);
  __m256i p8 = _mm256_packs_epi16(p16a, p16b);
  p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), p8);
  return d;
}

void QuantizeQ8_0(const float* x, int64_t n, uint8_t* act) {
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK, act += kQ8_0Bytes) {
    const float d = QuantizeBlock(x, act + 2, nullptr);
    const uint16_t h = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    std::memcpy(act, &h, 2);
  }
}

void QuantizeQ8_1(const float* x, int64_t n, uint8_t* act) {
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK, act += kQ8_1Bytes) {
    int sum;
    const float d = QuantizeBlock(x, act + 8, &sum);
    const uint16_t h[2] = {_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT), 0};
    std::memcpy(act, h, 4);
    const float s = Q8_1Sum(d, sum);
    std::memcpy(act + 4, &s, 4);
  }
}

// ---- block dots ----

// The signed levels of one weight block of a scale-only format, as 32 int8.
inline __m256i LevelsQ8_0(const uint8_t* b) { return Load32(b + 2); }
inline __m256i LevelsQ4_0(const uint8_t* b) {
  return _mm256_sub_epi8(Nibbles(b + 2), _mm256_set1_epi8(8));
}
inline __m256i LevelsQ5_0(const uint8_t* b) {
  return _mm256_sub_epi8(_mm256_or_si256(Nibbles(b + 6), FifthBits(b + 2)), _mm256_set1_epi8(16));
}
// Unsigned levels of the scale + minimum formats.
inline __m256i LevelsQ4_1(const uint8_t* b) { return Nibbles(b + 4); }
inline __m256i LevelsQ5_1(const uint8_t* b) {
  return _mm256_or_si256(Nibbles(b + 8), FifthBits(b + 4));
}

template <int kBytes, __m256i (*Levels)(const uint8_t*)>
float DotScaled(int64_t n, const uint8_t* w, const uint8_t* act) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK; ++b, w += kBytes, act += kQ8_0Bytes) {
    _mm_prefetch(reinterpret_cast<const char*>(w + kDecodePrefetchBytes), _MM_HINT_T0);
    const __m256 d = _mm256_set1_ps(Half(w) * Half(act));
    acc = _mm256_fmadd_ps(d, DotS8S8(Levels(w), Load32(act + 2)), acc);
  }
  return Hsum(acc);
}

template <int kBytes, __m256i (*Levels)(const uint8_t*)>
float DotScaledMin(int64_t n, const uint8_t* w, const uint8_t* act) {
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  for (int64_t b = 0; b < n / kQK; ++b, w += kBytes, act += kQ8_1Bytes) {
    _mm_prefetch(reinterpret_cast<const char*>(w + kDecodePrefetchBytes), _MM_HINT_T0);
    float act_sum;
    std::memcpy(&act_sum, act + 4, 4);
    mins += Half(w + 2) * act_sum;
    const __m256 d = _mm256_set1_ps(Half(w) * Half(act));
    acc = _mm256_fmadd_ps(d, DotU8S8(Levels(w), Load32(act + 8)), acc);
  }
  return Hsum(acc) + mins;
}

// 4-token versions: the weight block's levels are decoded once and used for 4 activation rows;
// each row's operations are those of the 1-token kernels above, in the same order.
template <int kBytes, __m256i (*Levels)(const uint8_t*)>
void DotScaled4(int64_t n, const uint8_t* w, const uint8_t* act, uint64_t stride, float* out) {
  constexpr int kC = 4;
  __m256 acc[kC];
  for (int c = 0; c < kC; ++c) acc[c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / kQK; ++b, w += kBytes) {
    const __m256i levels = Levels(w);
    const __m256i abs = _mm256_sign_epi8(levels, levels);
    const float dw = Half(w);
    for (int c = 0; c < kC; ++c) {
      const uint8_t* a = act + c * stride + b * kQ8_0Bytes;
      const __m256 d = _mm256_set1_ps(dw * Half(a));
      acc[c] = _mm256_fmadd_ps(d, DotU8S8(abs, _mm256_sign_epi8(Load32(a + 2), levels)), acc[c]);
    }
  }
  for (int c = 0; c < kC; ++c) out[c] = Hsum(acc[c]);
}

template <int kBytes, __m256i (*Levels)(const uint8_t*)>
void DotScaledMin4(int64_t n, const uint8_t* w, const uint8_t* act, uint64_t stride, float* out) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  float mins[4] = {0, 0, 0, 0};
  for (int64_t b = 0; b < n / kQK; ++b, w += kBytes) {
    const __m256i levels = Levels(w);
    const float dw = Half(w), mw = Half(w + 2);
    for (int c = 0; c < 4; ++c) {
      const uint8_t* a = act + c * stride + b * kQ8_1Bytes;
      float act_sum;
      std::memcpy(&act_sum, a + 4, 4);
      mins[c] += mw * act_sum;
      const __m256 d = _mm256_set1_ps(dw * Half(a));
      acc[c] = _mm256_fmadd_ps(d, DotU8S8(levels, Load32(a + 8)), acc[c]);
    }
  }
  for (int c = 0; c < 4; ++c) out[c] = Hsum(acc[c]) + mins[c];
}

// ---- float weights x float activations ----

inline __m256 LoadF32(const uint8_t* w, int64_t i) {
  return _mm256_loadu_ps(reinterpret_cast<const float*>(w) + i);
}
inline __m256 LoadF16(const uint8_t* w, int64_t i) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i)));
}
inline __m256 LoadBF16(const uint8_t* w, int64_t i) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline float ScalarF32(const uint8_t* w, int64_t i) { return reinterpret_cast<const float*>(w)[i]; }
inline float ScalarF16(const uint8_t* w, int64_t i) {
  uint16_t h;
  std::memcpy(&h, w + 2 * i, 2);
  return F16ToF32(h);
}
inline float ScalarBF16(const uint8_t* w, int64_t i) {
  uint16_t h;
  std::memcpy(&h, w + 2 * i, 2);
  return BF16ToF32(h);
}

// kC tokens at once; each weight vector is loaded (and converted) once for all of them. Every
// token's sums are the same operations in the same order for any kC, so DotFloat4 equals DotFloat.
template <int kC, __m256 (*Load)(const uint8_t*, int64_t), float (*Scalar)(const uint8_t*, int64_t)>
void DotFloatN(int64_t n, const uint8_t* w, const uint8_t* act, uint64_t stride, float* out) {
  const float* x[kC];
  __m256 acc[kC][2];
  for (int c = 0; c < kC; ++c) {
    x[c] = reinterpret_cast<const float*>(act + c * stride);
    acc[c][0] = acc[c][1] = _mm256_setzero_ps();
  }
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 w0 = Load(w, i), w1 = Load(w, i + 8);
    for (int c = 0; c < kC; ++c) {
      acc[c][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[c] + i), acc[c][0]);
      acc[c][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[c] + i + 8), acc[c][1]);
    }
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 w0 = Load(w, i);
    for (int c = 0; c < kC; ++c)
      acc[c][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[c] + i), acc[c][0]);
  }
  for (int c = 0; c < kC; ++c) {
    float sum = Hsum(_mm256_add_ps(acc[c][0], acc[c][1]));
    for (int64_t j = i; j < n; ++j) sum += Scalar(w, j) * x[c][j];
    out[c] = sum;
  }
}

template <__m256 (*Load)(const uint8_t*, int64_t), float (*Scalar)(const uint8_t*, int64_t)>
float DotFloat(int64_t n, const uint8_t* w, const uint8_t* act) {
  float out;
  DotFloatN<1, Load, Scalar>(n, w, act, 0, &out);
  return out;
}

}  // namespace

DotKernel GetKernel(DType t) {
  const Isa s = Isa::kAvx2;
  switch (t) {
    case DType::kF32:
      return {ActFormat::kF32, nullptr, DotFloat<LoadF32, ScalarF32>, s,
              DotFloatN<4, LoadF32, ScalarF32>};
    case DType::kF16:
      return {ActFormat::kF32, nullptr, DotFloat<LoadF16, ScalarF16>, s,
              DotFloatN<4, LoadF16, ScalarF16>};
    case DType::kBF16:
      return {ActFormat::kF32, nullptr, DotFloat<LoadBF16, ScalarBF16>, s,
              DotFloatN<4, LoadBF16, ScalarBF16>};
    case DType::kQ8_0:
      return {ActFormat::kQ8_0, QuantizeQ8_0, DotScaled<34, LevelsQ8_0>, s,
              DotScaled4<34, LevelsQ8_0>};
    case DType::kQ4_0:
      return {ActFormat::kQ8_0, QuantizeQ8_0, DotScaled<18, LevelsQ4_0>, s,
              DotScaled4<18, LevelsQ4_0>};
    case DType::kQ5_0:
      return {ActFormat::kQ8_0, QuantizeQ8_0, DotScaled<22, LevelsQ5_0>, s,
              DotScaled4<22, LevelsQ5_0>};
    case DType::kQ4_1:
      return {ActFormat::kQ8_1, QuantizeQ8_1, DotScaledMin<20, LevelsQ4_1>, s,
              DotScaledMin4<20, LevelsQ4_1>};
    case DType::kQ5_1:
      return {ActFormat::kQ8_1, QuantizeQ8_1, DotScaledMin<24, LevelsQ5_1>, s,
              DotScaledMin4<24, LevelsQ5_1>};
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return GetKQuantKernel(t);  // qdot_kquant_*.cc
    default:
      return {};
  }
}

}  // namespace herd::kernels::avx2
