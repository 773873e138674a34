// AVX-512 kernels for qdot.h (this file alone is compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx2 -mfma -mf16c, and only called after CPUID reports AVX-512 F+BW+VL). VNNI's vpdpbusd is
// written as inline assembly in the variants GetKernel picks only where CPUID reports VNNI: the
// file is compiled without -mavx512vnni, so the compiler cannot put VNNI instructions anywhere
// else (clang, for one, would otherwise turn vpmaddwd + vpaddd into vpdpwssd on its own).
//
// Every kernel here computes exactly what the AVX2 kernel of its dtype computes (qdot_avx2.cc),
// bit for bit, only with fewer instructions:
//   * The int32 sums of a block are exact, and lane k holds the products of elements 4k..4k+3,
//     as in the AVX2 kernels; VNNI's vpdpbusd forms those lane sums in one instruction (without
//     VNNI, vpmaddubsw + vpmaddwd as at AVX2: the same sums, no int16 saturation is possible,
//     see DotU8S8).
//   * The float steps are the AVX2 kernels' steps in the same order: per block one FMA of the
//     8 lane sums by the broadcast scale product into an 8-lane accumulator (ggml's order, which
//     the llama.cpp golden tests compare against), one horizontal sum at the end. A 512-bit
//     register carries two of those 8-lane steps at once: two blocks of one row (the 1-token
//     kernels; their FMAs stay two sequential 256-bit FMAs) or the same block of two tokens
//     (the 4-token kernels: each token's FMA is lanes 0..7 or 8..15 of one 512-bit FMA). The
//     scale products are formed 16 blocks at a time (gathers) instead of once per block.
//   * Float weights: one 16-lane accumulator is AVX2's two 8-lane ones side by side (for row
//     lengths that are multiples of 8; see DotFloatN, also for how it reads activation rows that
//     do not start on a cache line).
// So the AVX2-vs-scalar tolerances hold unchanged, results do not depend on which of the two
// levels ran, and each 4-token kernel equals its 1-token kernel (tests/qdot_test.cc checks all
// three). Activation quantisation reuses the AVX2 quantisers: it is O(columns) per token against
// the matmuls' O(rows x columns), and already writes the reference bytes.

#include <cmath>
#include <cstring>

#include "base/cpu.h"
#include "kernels/convert.h"
#include "kernels/immintrin_avx512.h"
#include "kernels/qdot.h"
#include "kernels/qdot_kquant.h"

namespace herd::kernels::avx512 {

namespace {

constexpr int kQK = kQ8Block;

// The AVX2 kernels' horizontal sum (same additions in the same order).
inline float Hsum(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

inline __m256 Lo(__m512 v) { return _mm512_castps512_ps256(v); }
inline __m256 Hi(__m512 v) {
  return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

inline __m128i Load16(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}
inline __m256i Load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
// 32 bytes at p0, then 32 bytes at p1.
inline __m512i Load32x2(const uint8_t* p0, const uint8_t* p1) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(Load32(p0)), Load32(p1), 1);
}
// Sums of 4 adjacent products u[i] * s[i] (u unsigned, s signed) in int32 lanes. Without VNNI the
// int16 pair sums cannot saturate: every caller has u <= 128, so |u0 s0 + u1 s1| <= 2 * 128 * 128
// = 32768, and only -32768 (u = 128, s = -128 twice) reaches the limit, which int16 holds.
template <bool kVnni>
inline __m512i DotU8S8(__m512i u, __m512i s) {
  if constexpr (kVnni) {
    __m512i sum = _mm512_setzero_si512();
    asm("vpdpbusd %[s], %[u], %[sum]" : [sum] "+v"(sum) : [u] "v"(u), [s] "v"(s));
    return sum;
  } else {
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
  }
}

// Signed x signed as |x| times y negated where x < 0 (AVX2's vpsignb pair: the same products,
// including -(-128) = -128 in int8; where x = 0 the product is 0 either way).
template <bool kVnni>
inline __m512i DotS8S8(__m512i x, __m512i y) {
  const __mmask64 neg = _mm512_movepi8_mask(x);
  return DotU8S8<kVnni>(_mm512_abs_epi8(x),
                        _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y));
}

// ---- weight levels of two 32-element blocks at once: b0's in bytes 0..31, b1's in 32..63 ----
// (b1 = b0 gives one block twice, for the 4-token kernels and an odd last block.)

// 16 bytes of nibbles per block -> per block 32 bytes 0..15 in element order (low nibbles, then
// high nibbles).
inline __m512i Nibbles(const uint8_t* qs0, const uint8_t* qs1) {
  // 128-bit lanes: qs0, qs0, qs1, qs1; lanes 1 and 3 (16-bit elements 8..15, 24..31) shifted.
  const __m512i v =
      _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(Load16(qs0)), 0xff00, Load16(qs1));
  return _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xff00ff00u, v, 4), _mm512_set1_epi8(0x0f));
}

// The fifth bits of two blocks (little-endian u32 each): bit j of the result is element j's.
inline __mmask64 FifthBits(const uint8_t* qh0, const uint8_t* qh1) {
  uint32_t lo, hi;
  std::memcpy(&lo, qh0, 4);
  std::memcpy(&hi, qh1, 4);
  return _cvtu64_mask64(static_cast<uint64_t>(hi) << 32 | lo);
}

// Signed levels of the scale-only formats.
inline __m512i LevelsQ8_0(const uint8_t* b0, const uint8_t* b1) { return Load32x2(b0 + 2, b1 + 2); }
inline __m512i LevelsQ4_0(const uint8_t* b0, const uint8_t* b1) {
  return _mm512_sub_epi8(Nibbles(b0 + 2, b1 + 2), _mm512_set1_epi8(8));
}
// nibble | fifth << 4, minus 16: nibble - 16 where the fifth bit is clear, else the nibble.
inline __m512i LevelsQ5_0(const uint8_t* b0, const uint8_t* b1) {
  const __m512i nib = Nibbles(b0 + 6, b1 + 6);
  return _mm512_mask_sub_epi8(nib, _knot_mask64(FifthBits(b0 + 2, b1 + 2)), nib,
                              _mm512_set1_epi8(16));
}
// Unsigned levels of the scale + minimum formats.
inline __m512i LevelsQ4_1(const uint8_t* b0, const uint8_t* b1) { return Nibbles(b0 + 4, b1 + 4); }
inline __m512i LevelsQ5_1(const uint8_t* b0, const uint8_t* b1) {
  const __m512i nib = Nibbles(b0 + 8, b1 + 8);
  return _mm512_mask_add_epi8(nib, FifthBits(b0 + 4, b1 + 4), nib, _mm512_set1_epi8(0x10));
}

using LevelsFn = __m512i (*)(const uint8_t*, const uint8_t*);

// ---- block scales, 16 blocks at a time ----
// The AVX2 kernels convert d_w and d_a and multiply them once per block and token (scalar
// instructions and a broadcast, as many as the block's integer work). Here one gather per row
// and chunk of 16 blocks fetches the 16 values of a field, converted and multiplied as vectors
// (d_w * d_a is exact in float: two 11-bit significands), and the per-block steps broadcast them
// from memory.

constexpr int kChunk = 16;

inline __mmask16 FirstLanes(int64_t m) {
  return m >= kChunk ? __mmask16{0xffff} : static_cast<__mmask16>((1u << m) - 1);
}

// The 4 bytes at p + kStride * j, for the lanes j in valid (0 in the others).
template <int kStride>
inline __m512i Gather(const uint8_t* p, __mmask16 valid) {
  const __m512i idx =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(kStride));
  return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, idx, p, 1);
}
// The f16 at p + kStride * j as floats.
template <int kStride>
inline __m512 GatherHalves(const uint8_t* p, __mmask16 valid) {
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(Gather<kStride>(p, valid)));
}
// The f32 at p + kStride * j.
template <int kStride>
inline __m512 GatherFloats(const uint8_t* p, __mmask16 valid) {
  return _mm512_castsi512_ps(Gather<kStride>(p, valid));
}

// d0 in lanes 0..7, d1 in lanes 8..15.
inline __m512 Halves(const float* d0, const float* d1) {
  return _mm512_mask_broadcastss_ps(_mm512_set1_ps(*d0), 0xff00, _mm_load_ss(d1));
}

// ---- 1 token: two blocks per 512-bit step ----

template <bool kVnni, int kBytes, LevelsFn Levels>
float DotScaled(int64_t n, const uint8_t* w, const uint8_t* act) {
  constexpr int kA = kQ8_0Bytes;
  __m256 acc = _mm256_setzero_ps();
  alignas(64) float d[kChunk];  // d_w * d_a of the chunk's blocks
  const int64_t nb = n / kQK;
  for (int64_t b0 = 0; b0 < nb; b0 += kChunk, w += kChunk * kBytes, act += kChunk * kA) {
    const int64_t m = nb - b0 < kChunk ? nb - b0 : kChunk;
    const __mmask16 valid = FirstLanes(m);
    _mm512_store_ps(d, _mm512_mul_ps(GatherHalves<kBytes>(w, valid), GatherHalves<kA>(act, valid)));
    int64_t j = 0;
    for (; j + 2 <= m; j += 2) {
      const uint8_t *wj = w + j * kBytes, *aj = act + j * kA;
      _mm_prefetch(reinterpret_cast<const char*>(wj + kDecodePrefetchBytes), _MM_HINT_T0);
      const __m512 s = _mm512_cvtepi32_ps(
          DotS8S8<kVnni>(Levels(wj, wj + kBytes), Load32x2(aj + 2, aj + kA + 2)));
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d[j]), Lo(s), acc);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d[j + 1]), Hi(s), acc);
    }
    if (j < m) {
      const uint8_t *wj = w + j * kBytes, *aj = act + j * kA;
      const __m512 s = _mm512_cvtepi32_ps(DotS8S8<kVnni>(Levels(wj, wj), Load32x2(aj + 2, aj + 2)));
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d[j]), Lo(s), acc);
    }
  }
  return Hsum(acc);
}

// The AVX2 kernels sum m_w * s_a in a float with one FMA per block (the compiler contracts their
// "mins += m_w * s_a"); written out here.
template <bool kVnni, int kBytes, LevelsFn Levels>
float DotScaledMin(int64_t n, const uint8_t* w, const uint8_t* act) {
  constexpr int kA = kQ8_1Bytes;
  __m256 acc = _mm256_setzero_ps();
  float mins = 0;
  alignas(64) float d[kChunk], mw[kChunk], sa[kChunk];
  const int64_t nb = n / kQK;
  for (int64_t b0 = 0; b0 < nb; b0 += kChunk, w += kChunk * kBytes, act += kChunk * kA) {
    const int64_t m = nb - b0 < kChunk ? nb - b0 : kChunk;
    const __mmask16 valid = FirstLanes(m);
    _mm512_store_ps(d, _mm512_mul_ps(GatherHalves<kBytes>(w, valid), GatherHalves<kA>(act, valid)));
    _mm512_store_ps(mw, GatherHalves<kBytes>(w + 2, valid));
    _mm512_store_ps(sa, GatherFloats<kA>(act + 4, valid));
    int64_t j = 0;
    for (; j + 2 <= m; j += 2) {
      mins = std::fma(mw[j], sa[j], mins);
      mins = std::fma(mw[j + 1], sa[j + 1], mins);
      const uint8_t *wj = w + j * kBytes, *aj = act + j * kA;
      _mm_prefetch(reinterpret_cast<const char*>(wj + kDecodePrefetchBytes), _MM_HINT_T0);
      const __m512 s = _mm512_cvtepi32_ps(
          DotU8S8<kVnni>(Levels(wj, wj + kBytes), Load32x2(aj + 8, aj + kA + 8)));
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d[j]), Lo(s), acc);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d[j + 1]), Hi(s), acc);
    }
    if (j < m) {
      mins = std::fma(mw[j], sa[j], mins);
      const uint8_t *wj = w + j * kBytes, *aj = act + j * kA;
      const __m512 s = _mm512_cvtepi32_ps(DotU8S8<kVnni>(Levels(wj, wj), Load32x2(aj + 8, aj + 8)));
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d[j]), Lo(s), acc);
    }
  }
  return Hsum(acc) + mins;
}

// ---- 4 tokens: each weight block decoded once; tokens 2p and 2p + 1 share a 512-bit step ----

template <bool kVnni, int kBytes, LevelsFn Levels>
void DotScaled4(int64_t n, const uint8_t* w, const uint8_t* act, uint64_t stride, float* out) {
  constexpr int kA = kQ8_0Bytes;
  const uint8_t* a[4];
  for (int c = 0; c < 4; ++c) a[c] = act + c * stride;
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  alignas(64) float d[4][kChunk];
  const int64_t nb = n / kQK;
  for (int64_t b0 = 0; b0 < nb; b0 += kChunk, w += kChunk * kBytes) {
    const int64_t m = nb - b0 < kChunk ? nb - b0 : kChunk;
    const __mmask16 valid = FirstLanes(m);
    const __m512 dw = GatherHalves<kBytes>(w, valid);
    for (int c = 0; c < 4; ++c)
      _mm512_store_ps(d[c], _mm512_mul_ps(dw, GatherHalves<kA>(a[c] + b0 * kA, valid)));
    for (int64_t j = 0; j < m; ++j) {
      const uint8_t* wj = w + j * kBytes;
      const __m512i levels = Levels(wj, wj);
      const __m512i abs = _mm512_abs_epi8(levels);
      const __mmask64 neg = _mm512_movepi8_mask(levels);
      for (int p = 0; p < 2; ++p) {
        const uint64_t at = (b0 + j) * kA + 2;
        const __m512i y = Load32x2(a[2 * p] + at, a[2 * p + 1] + at);
        const __m512i s =
            DotU8S8<kVnni>(abs, _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y));
        acc[p] =
            _mm512_fmadd_ps(Halves(&d[2 * p][j], &d[2 * p + 1][j]), _mm512_cvtepi32_ps(s), acc[p]);
      }
    }
  }
  for (int p = 0; p < 2; ++p) out[2 * p] = Hsum(Lo(acc[p])), out[2 * p + 1] = Hsum(Hi(acc[p]));
}

template <bool kVnni, int kBytes, LevelsFn Levels>
void DotScaledMin4(int64_t n, const uint8_t* w, const uint8_t* act, uint64_t stride, float* out) {
  constexpr int kA = kQ8_1Bytes;
  const uint8_t* a[4];
  for (int c = 0; c < 4; ++c) a[c] = act + c * stride;
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  float mins[4] = {0, 0, 0, 0};
  alignas(64) float d[4][kChunk], sa[4][kChunk], mw[kChunk];
  const int64_t nb = n / kQK;
  for (int64_t b0 = 0; b0 < nb; b0 += kChunk, w += kChunk * kBytes) {
    const int64_t m = nb - b0 < kChunk ? nb - b0 : kChunk;
    const __mmask16 valid = FirstLanes(m);
    const __m512 dw = GatherHalves<kBytes>(w, valid);
    _mm512_store_ps(mw, GatherHalves<kBytes>(w + 2, valid));
    for (int c = 0; c < 4; ++c) {
      _mm512_store_ps(d[c], _mm512_mul_ps(dw, GatherHalves<kA>(a[c] + b0 * kA, valid)));
      _mm512_store_ps(sa[c], GatherFloats<kA>(a[c] + b0 * kA + 4, valid));
    }
    for (int64_t j = 0; j < m; ++j) {
      const uint8_t* wj = w + j * kBytes;
      const __m512i levels = Levels(wj, wj);
      for (int c = 0; c < 4; ++c) mins[c] = std::fma(mw[j], sa[c][j], mins[c]);
      for (int p = 0; p < 2; ++p) {
        const uint64_t at = (b0 + j) * kA + 8;
        const __m512i s = DotU8S8<kVnni>(levels, Load32x2(a[2 * p] + at, a[2 * p + 1] + at));
        acc[p] =
            _mm512_fmadd_ps(Halves(&d[2 * p][j], &d[2 * p + 1][j]), _mm512_cvtepi32_ps(s), acc[p]);
      }
    }
  }
  for (int p = 0; p < 2; ++p) {
    out[2 * p] = Hsum(Lo(acc[p])) + mins[2 * p];
    out[2 * p + 1] = Hsum(Hi(acc[p])) + mins[2 * p + 1];
  }
}

// ---- float weights x float activations ----

inline __m512 LoadF32(const uint8_t* w, int64_t i) {
  return _mm512_loadu_ps(reinterpret_cast<const float*>(w) + i);
}
inline __m512 LoadF16(const uint8_t* w, int64_t i) { return _mm512_cvtph_ps(Load32(w + 2 * i)); }
inline __m512 LoadBF16(const uint8_t* w, int64_t i) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(Load32(w + 2 * i)), 16));
}
// 8 elements, for the AVX2 kernels' 8-wide remainder step.
inline __m256 Load8F32(const uint8_t* w, int64_t i) {
  return _mm256_loadu_ps(reinterpret_cast<const float*>(w) + i);
}
inline __m256 Load8F16(const uint8_t* w, int64_t i) { return _mm256_cvtph_ps(Load16(w + 2 * i)); }
inline __m256 Load8BF16(const uint8_t* w, int64_t i) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(Load16(w + 2 * i)), 16));
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

// kC tokens at once. Lanes 0..7 of a token's accumulator are the AVX2 kernel's first accumulator
// (elements 16i + j), lanes 8..15 its second (16i + 8 + j); then AVX2's 8-wide step into the
// first and the same horizontal sum of their lane-wise sum. The last n % 8 elements (no model row
// has them) are one explicit FMA each: the compiler turns AVX2's "sum += w * x" there into FMAs
// or into vectorised products and adds depending on how many there are, so only lengths that are
// multiples of 8 are bit-identical to AVX2, while the fixed FMAs keep DotFloatN<4> equal to
// DotFloatN<1> for every length.
template <int kC, __m512 (*Load)(const uint8_t*, int64_t), __m256 (*Load8)(const uint8_t*, int64_t),
          float (*Scalar)(const uint8_t*, int64_t)>
void DotFloatN(int64_t n, const uint8_t* w, const uint8_t* act, uint64_t stride, float* out) {
  const float* x[kC];
  __m512 acc[kC];
  for (int c = 0; c < kC; ++c) {
    x[c] = reinterpret_cast<const float*>(act + c * stride);
    acc[c] = _mm512_setzero_ps();
  }
  int64_t i = 0;
  // A row that does not start on a 64-byte boundary (malloc aligns to 16 bytes) makes every
  // 512-bit load of it span two cache lines, which costs more than the FMAs here. When all kC rows
  // are off by the same m floats, each row is read as aligned lines instead (the first and last
  // masked to the row's own elements), and each step's 16 elements are put together from two
  // lines with vpermt2ps: the same values in the same lanes as the plain loads below.
  const uintptr_t off = reinterpret_cast<uintptr_t>(x[0]) & 63;
  bool same = off % 4 == 0;
  for (int c = 1; c < kC; ++c) same &= (reinterpret_cast<uintptr_t>(x[c]) & 63) == off;
  if (n >= 16 && off != 0 && same) {
    const int m = static_cast<int>(off / 4);
    const __mmask16 first = static_cast<__mmask16>(0xffffu << m), second = ~first;
    const __m512i idx =
        _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(m));
    __m512 prev[kC];
    for (int c = 0; c < kC; ++c) prev[c] = _mm512_maskz_load_ps(first, x[c] - m);
    for (; i + 16 <= n; i += 16) {
      const __m512 w0 = Load(w, i);
      for (int c = 0; c < kC; ++c) {
        const float* next = x[c] + i - m + 16;
        // The whole next line is needed by the next step; in the last step only its first lanes.
        const __m512 line = i + 32 <= n ? _mm512_load_ps(next) : _mm512_maskz_load_ps(second, next);
        const __m512 v = _mm512_permutex2var_ps(prev[c], idx, line);
        prev[c] = line;
        acc[c] = _mm512_fmadd_ps(w0, v, acc[c]);
      }
    }
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 w0 = Load(w, i);
    for (int c = 0; c < kC; ++c) acc[c] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[c] + i), acc[c]);
  }
  __m256 acc0[kC];
  for (int c = 0; c < kC; ++c) acc0[c] = Lo(acc[c]);
  if (i + 8 <= n) {
    const __m256 w0 = Load8(w, i);
    for (int c = 0; c < kC; ++c) acc0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[c] + i), acc0[c]);
    i += 8;
  }
  for (int c = 0; c < kC; ++c) {
    float sum = Hsum(_mm256_add_ps(acc0[c], Hi(acc[c])));
    for (int64_t j = i; j < n; ++j) sum = std::fma(Scalar(w, j), x[c][j], sum);
    out[c] = sum;
  }
}

template <__m512 (*Load)(const uint8_t*, int64_t), __m256 (*Load8)(const uint8_t*, int64_t),
          float (*Scalar)(const uint8_t*, int64_t)>
float DotFloat(int64_t n, const uint8_t* w, const uint8_t* act) {
  float out;
  DotFloatN<1, Load, Load8, Scalar>(n, w, act, 0, &out);
  return out;
}

template <bool kVnni>
DotKernel Kernel(DType t) {
  const Isa s = Isa::kAvx512;
  // The activation quantisers (bytes identical at every level) are AVX2's.
  const QuantizeActFn q8_0 = avx2::GetKernel(DType::kQ8_0).quantize;
  const QuantizeActFn q8_1 = avx2::GetKernel(DType::kQ4_1).quantize;
  switch (t) {
    case DType::kF32:
      return {ActFormat::kF32, nullptr, DotFloat<LoadF32, Load8F32, ScalarF32>, s,
              DotFloatN<4, LoadF32, Load8F32, ScalarF32>};
    case DType::kF16:
      return {ActFormat::kF32, nullptr, DotFloat<LoadF16, Load8F16, ScalarF16>, s,
              DotFloatN<4, LoadF16, Load8F16, ScalarF16>};
    case DType::kBF16:
      return {ActFormat::kF32, nullptr, DotFloat<LoadBF16, Load8BF16, ScalarBF16>, s,
              DotFloatN<4, LoadBF16, Load8BF16, ScalarBF16>};
    case DType::kQ8_0:
      return {ActFormat::kQ8_0, q8_0, DotScaled<kVnni, 34, LevelsQ8_0>, s,
              DotScaled4<kVnni, 34, LevelsQ8_0>};
    case DType::kQ4_0:
      return {ActFormat::kQ8_0, q8_0, DotScaled<kVnni, 18, LevelsQ4_0>, s,
              DotScaled4<kVnni, 18, LevelsQ4_0>};
    case DType::kQ5_0:
      return {ActFormat::kQ8_0, q8_0, DotScaled<kVnni, 22, LevelsQ5_0>, s,
              DotScaled4<kVnni, 22, LevelsQ5_0>};
    case DType::kQ4_1:
      return {ActFormat::kQ8_1, q8_1, DotScaledMin<kVnni, 20, LevelsQ4_1>, s,
              DotScaledMin4<kVnni, 20, LevelsQ4_1>};
    case DType::kQ5_1:
      return {ActFormat::kQ8_1, q8_1, DotScaledMin<kVnni, 24, LevelsQ5_1>, s,
              DotScaledMin4<kVnni, 24, LevelsQ5_1>};
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return GetKQuantKernel(t, kVnni);  // qdot_kquant_avx512.cc
    default:
      return {};
  }
}

}  // namespace

DotKernel GetKernel(DType t, bool vnni) { return vnni ? Kernel<true>(t) : Kernel<false>(t); }

DotKernel GetKernel(DType t) {
  static const bool vnni = DetectCpu().avx512vnni;
  return GetKernel(t, vnni);
}

}  // namespace herd::kernels::avx512
