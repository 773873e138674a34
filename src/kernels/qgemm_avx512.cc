// AVX-512 VNNI kernels for qgemm.h (this file alone is compiled with -mavx512vnni, and only
// called after CPUID reports AVX-512 F+BW+VL and VNNI). One 512-bit register is a 16-row group's
// line: 4 consecutive elements of each row; vpdpbusd multiplies it by 4 activation bytes that the
// instruction broadcasts from memory, adding the 4 products of each row into that row's int32
// lane. The integer sums are exact and the float steps are the scalar reference's, one per block
// and row, in block order (qgemm.h), so the results equal the scalar kernels' bit for bit.

#include <cstring>
#include <utility>

#include "kernels/immintrin_avx512.h"
#include "kernels/qdot.h"
#include "kernels/qgemm.h"

namespace herd::kernels::avx512 {

namespace {

using qgemm_impl::TileFn;
using qgemm_impl::Tiles;

inline __m512i Bcast(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

inline __m512i Line(const uint8_t* p) { return _mm512_load_si512(p); }

// The 16 f16 scales at p as floats.
inline __m512 Scales16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)));
}

inline void Prefetch(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p + kDecodePrefetchBytes), _MM_HINT_T0);
}

// Compile-time unrolling: f(std::integral_constant<int, I>) for I = 0 .. N - 1, inlined (GCC
// leaves the kernels' nested loops rolled and shuffles the accumulator arrays between registers).
template <class F, int... I>
[[gnu::always_inline]] inline void UnrollImpl(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>()), ...);
}
template <int N, class F>
[[gnu::always_inline]] inline void Unroll(F&& f) {
  UnrollImpl(f, std::make_integer_sequence<int, N>());
}

// q8_0 (kQ8) and q4_0: per block, the 8 lines of weights (q4_0's 4 lines split into low and high
// nibbles: elements 0..15 and 16..31) are reused for the N tokens.
template <bool kQ8, int N>
void Blocks32N(const uint8_t* group, const QActs& a, int64_t t0, float* out, int64_t ldo) {
  const int64_t blocks = a.blocks, rb = a.row_bytes;
  constexpr int64_t kBlockBytes = kQ8 ? 512 : 256;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc[N];
  Unroll<N>([&](auto i) [[gnu::always_inline]] { acc[i] = _mm512_setzero_ps(); });
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* wb = Block32Lines(group, b, kBlockBytes);
    __m512i w[8];
    if constexpr (kQ8) {
      Unroll<8>([&](auto j) [[gnu::always_inline]] {
        Prefetch(wb + 64 * j);
        w[j] = Line(wb + 64 * j);
      });
    } else {
      Unroll<4>([&](auto j) [[gnu::always_inline]] {
        Prefetch(wb + 64 * j);
        const __m512i v = Line(wb + 64 * j);
        w[j] = _mm512_and_si512(v, low4);
        w[4 + j] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      });
    }
    const __m512 dw = Scales16(Block32Scales(group, b, kBlockBytes));
    const auto* qb = reinterpret_cast<const int8_t*>(a.q + t0 * rb + b * kQ8_0Bytes + 2);
    const int32_t* sum = a.sum + (t0 * blocks + b) * 2 + (kQ8 ? 0 : 1);
    const float* scale = a.scale + t0 * blocks + b;
    Unroll<N>([&](auto i) [[gnu::always_inline]] {
      // Independent partial sums (exact, in any order) shorten the dependency chain, which
      // matters when few tokens share the weights.
      constexpr int kChains = N < 4 ? 4 : 2;
      __m512i s[kChains];
      s[0] = _mm512_set1_epi32(sum[i * blocks * 2]);
      Unroll<kChains - 1>([&](auto c)
                              [[gnu::always_inline]] { s[c + 1] = _mm512_setzero_si512(); });
      Unroll<8>([&](auto j) [[gnu::always_inline]] {
        s[j % kChains] = _mm512_dpbusd_epi32(s[j % kChains], w[j], Bcast(qb + i * rb + 4 * j));
      });
      Unroll<kChains - 1>([&](auto c)
                              [[gnu::always_inline]] { s[0] = _mm512_add_epi32(s[0], s[c + 1]); });
      const __m512 sc = _mm512_mul_ps(dw, _mm512_set1_ps(scale[i * blocks]));
      acc[i] = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(s[0]), acc[i]);
    });
  }
  Unroll<N>([&](auto i) [[gnu::always_inline]] { _mm512_storeu_ps(out + i * ldo, acc[i]); });
}

// q4_K: per 256-block, sub-blocks 2c and 2c + 1 share lines (low and high nibbles). Each half
// sub-block's int32 sums (16 elements, |sum| <= 16 * 15 * 128 < 2^15, so the lane is a
// sign-extended int16) are scaled by the rows' 6-bit scales with vpdpwssd against the int16 pairs
// (sc, 0): sc * sum exactly, one instruction. The mins' term comes from vpdpwssd of the rows' mins
// (int16 pairs) by the activation's 32-element sums (int16 pairs). kTwoPass: each line is read
// twice, low nibbles for sub-block 2c, then high for 2c + 1, so a token needs one partial sum
// register instead of two and a tile can hold more tokens; without it (tiles of 1 to 3 tokens)
// the two partial sums per token are independent dependency chains, which decode needs.
// The float accumulators live in a small buffer (updated once per 256-block), not registers.
template <bool kTwoPass, int N>
void Q4KN(const uint8_t* group, const QActs& a, int64_t t0, float* out, int64_t ldo) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  alignas(64) float accbuf[N * 16];
  Unroll<N>([&](auto i)
                [[gnu::always_inline]] { _mm512_store_ps(accbuf + 16 * i, _mm512_setzero_ps()); });
  const int64_t rb = a.row_bytes;
  for (int64_t b = 0; b < a.blocks; ++b) {
    const uint8_t* o = group + b * kQ4KPackedBytes;
    const int8_t* qb = reinterpret_cast<const int8_t*>(a.q + t0 * rb + b * kQ8_KBytes + 4);
    __m512i sumi[N];
    Unroll<N>([&](auto i) [[gnu::always_inline]] { sumi[i] = _mm512_setzero_si512(); });
    for (int c = 0; c < 4; ++c) {
      const uint8_t* lines = o + 320 + 8 * c * 64;
      const int8_t* qc = qb + 64 * c;
      const __m512i sc_lo = _mm512_cvtepu8_epi32(
          _mm_load_si128(reinterpret_cast<const __m128i*>(o + 64 + (2 * c) * 16)));
      const __m512i sc_hi = _mm512_cvtepu8_epi32(
          _mm_load_si128(reinterpret_cast<const __m128i*>(o + 64 + (2 * c + 1) * 16)));
      Unroll<2>([&](auto half) [[gnu::always_inline]] {
        if constexpr (kTwoPass) {
          Unroll<2>([&](auto nib) [[gnu::always_inline]] {
            __m512i part[N];
            Unroll<N>([&](auto i) [[gnu::always_inline]] { part[i] = _mm512_setzero_si512(); });
            Unroll<4>([&](auto jj) [[gnu::always_inline]] {
              constexpr int j = 4 * half + jj;
              if (nib == 0) Prefetch(lines + 64 * j);
              const __m512i v = Line(lines + 64 * j);
              const __m512i w =
                  nib ? _mm512_and_si512(_mm512_srli_epi16(v, 4), low4) : _mm512_and_si512(v, low4);
              Unroll<N>([&](auto i) [[gnu::always_inline]] {
                part[i] = _mm512_dpbusd_epi32(part[i], w, Bcast(qc + i * rb + 32 * nib + 4 * j));
              });
            });
            Unroll<N>([&](auto i) [[gnu::always_inline]] {
              sumi[i] = _mm512_dpwssd_epi32(sumi[i], part[i], nib ? sc_hi : sc_lo);
            });
          });
        } else {
          __m512i lo_sum[N], hi_sum[N];
          Unroll<N>([&](auto i) [[gnu::always_inline]] {
            lo_sum[i] = _mm512_setzero_si512();
            hi_sum[i] = _mm512_setzero_si512();
          });
          Unroll<4>([&](auto jj) [[gnu::always_inline]] {
            constexpr int j = 4 * half + jj;
            Prefetch(lines + 64 * j);
            const __m512i v = Line(lines + 64 * j);
            const __m512i lo = _mm512_and_si512(v, low4);
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
            Unroll<N>([&](auto i) [[gnu::always_inline]] {
              lo_sum[i] = _mm512_dpbusd_epi32(lo_sum[i], lo, Bcast(qc + i * rb + 4 * j));
              hi_sum[i] = _mm512_dpbusd_epi32(hi_sum[i], hi, Bcast(qc + i * rb + 32 + 4 * j));
            });
          });
          Unroll<N>([&](auto i) [[gnu::always_inline]] {
            sumi[i] = _mm512_dpwssd_epi32(sumi[i], lo_sum[i], sc_lo);
            sumi[i] = _mm512_dpwssd_epi32(sumi[i], hi_sum[i], sc_hi);
          });
        }
      });
    }
    __m512i mins[4];
    Unroll<4>([&](auto p) [[gnu::always_inline]] {
      mins[p] = _mm512_cvtepu8_epi16(
          _mm256_load_si256(reinterpret_cast<const __m256i*>(o + 192 + p * 32)));
    });
    const __m512 d = Scales16(o), dmin = Scales16(o + 32);
    Unroll<N>([&](auto i) [[gnu::always_inline]] {
      const int64_t t = t0 + i;
      const int32_t* side = a.sum + (t * a.blocks + b) * 20;
      __m512i summ = _mm512_setzero_si512();
      Unroll<4>([&](auto p) [[gnu::always_inline]] {
        summ = _mm512_dpwssd_epi32(summ, mins[p], _mm512_set1_epi32(side[p]));
      });
      const __m512 da = _mm512_set1_ps(a.scale[t * a.blocks + b]);
      __m512 acc = _mm512_load_ps(accbuf + 16 * i);
      acc = _mm512_fmadd_ps(_mm512_mul_ps(d, da), _mm512_cvtepi32_ps(sumi[i]), acc);
      acc = _mm512_fnmadd_ps(_mm512_mul_ps(dmin, da), _mm512_cvtepi32_ps(summ), acc);
      _mm512_store_ps(accbuf + 16 * i, acc);
    });
  }
  Unroll<N>([&](auto i) [[gnu::always_inline]] {
    _mm512_storeu_ps(out + i * ldo, _mm512_load_ps(accbuf + 16 * i));
  });
}

// Tokens t0 .. t0 + N - 1 at Q8_K block b: their quantised bytes and their 16 sums of 16 (the
// side data after the 4 pair sums).
template <int N>
inline void Q8KBlockPointers(const QActs& a, int64_t t0, int64_t b, const int8_t* (&q)[N],
                             const int32_t* (&side)[N]) {
  for (int i = 0; i < N; ++i) {
    q[i] = reinterpret_cast<const int8_t*>(a.q + (t0 + i) * a.row_bytes + b * kQ8_KBytes + 4);
    side[i] = a.sum + ((t0 + i) * a.blocks + b) * 20 + 4;
  }
}

// q6_K's float step for block b: acc_i += (d * d_a) * float(sumi_i).
template <int N>
inline void AddBlock(const QActs& a, int64_t t0, int64_t b, __m512 d, const __m512i (&sumi)[N],
                     __m512 (&acc)[N]) {
  for (int i = 0; i < N; ++i) {
    const __m512 dd = _mm512_mul_ps(d, _mm512_set1_ps(a.scale[(t0 + i) * a.blocks + b]));
    acc[i] = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(sumi[i]), acc[i]);
  }
}

// q6_K: per pair of 16-element sub-blocks, 4 lines of low 4 bits and 2 of high 2 bits; a
// sub-block's sum starts at -32 * (its activation sum), so it is sum (q - 32) * q_a, then is
// scaled by the rows' int8 scales in int32.
template <int N>
void Q6KN(const uint8_t* group, const QActs& a, int64_t t0, float* out, int64_t ldo) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), two = _mm512_set1_epi8(0x30);
  __m512 acc[N];
  for (int i = 0; i < N; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < a.blocks; ++b) {
    const uint8_t* o = group + b * kQ6KPackedBytes;
    const int8_t* q[N];
    const int32_t* side[N];
    Q8KBlockPointers(a, t0, b, q, side);
    __m512i sumi[N];
    for (int i = 0; i < N; ++i) sumi[i] = _mm512_setzero_si512();
    for (int p = 0; p < 8; ++p) {
      const uint8_t* pair = o + 320 + p * 384;
      const int s0 = 2 * p, s1 = 2 * p + 1;
      __m512i sum0[N], sum1[N];
      for (int i = 0; i < N; ++i) {
        sum0[i] = _mm512_set1_epi32(-32 * side[i][s0]);
        sum1[i] = _mm512_set1_epi32(-32 * side[i][s1]);
      }
      Prefetch(pair + 256);
      const __m512i h0 = Line(pair + 256), h1 = Line(pair + 320);
      for (int l = 0; l < 4; ++l) {
        Prefetch(pair + 64 * l);
        const __m512i v = Line(pair + 64 * l);
        // High bits 2l, 2l + 1 moved to bits 4, 5 (shifts in 16-bit lanes; the mask drops what
        // crossed from the neighbouring byte).
        const int shift = 4 - 2 * l;
        const __m512i b0 =
            shift >= 0 ? _mm512_slli_epi16(h0, shift) : _mm512_srli_epi16(h0, -shift);
        const __m512i b1 =
            shift >= 0 ? _mm512_slli_epi16(h1, shift) : _mm512_srli_epi16(h1, -shift);
        const __m512i w0 = _mm512_or_si512(_mm512_and_si512(v, low4), _mm512_and_si512(b0, two));
        const __m512i w1 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), low4),
                                           _mm512_and_si512(b1, two));
        for (int i = 0; i < N; ++i) {
          sum0[i] = _mm512_dpbusd_epi32(sum0[i], w0, Bcast(q[i] + 16 * s0 + 4 * l));
          sum1[i] = _mm512_dpbusd_epi32(sum1[i], w1, Bcast(q[i] + 16 * s1 + 4 * l));
        }
      }
      const __m512i sc0 =
          _mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(o + 32 + s0 * 16)));
      const __m512i sc1 =
          _mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(o + 32 + s1 * 16)));
      for (int i = 0; i < N; ++i) {
        sumi[i] = _mm512_add_epi32(sumi[i], _mm512_add_epi32(_mm512_mullo_epi32(sum0[i], sc0),
                                                             _mm512_mullo_epi32(sum1[i], sc1)));
      }
    }
    AddBlock(a, t0, b, Scales16(o), sumi, acc);
  }
  for (int i = 0; i < N; ++i) _mm512_storeu_ps(out + i * ldo, acc[i]);
}

// Unpacked q6_K groups (qgemm.h's kUnpackedBytes layout): line e / 4 of a 256-block holds levels
// e .. e + 3 of the 16 rows, one byte each. (Unpacking q4_K the same way measured slower: 207-215
// against 230-239 t/s pp512 on 1B q4_k_m; its nibbles cost 3 operations per line against q6_K's 9,
// and the unpacked lines double the bytes each tile reads.)
void UnpackQ6K(const uint8_t* group, int64_t blocks, uint8_t* dst) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), two = _mm512_set1_epi8(0x30);
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* o = group + b * kQ6KPackedBytes;
    uint8_t* u = dst + b * kUnpackedBytes;
    for (int k = 0; k < 5; ++k) _mm512_store_si512(u + 64 * k, Line(o + 64 * k));
    for (int p = 0; p < 8; ++p) {
      const uint8_t* pair = o + 320 + p * 384;
      const __m512i h0 = Line(pair + 256), h1 = Line(pair + 320);
      for (int l = 0; l < 4; ++l) {
        const __m512i v = Line(pair + 64 * l);
        const int shift = 4 - 2 * l;
        const __m512i b0 = shift >= 0 ? _mm512_slli_epi16(h0, shift) : _mm512_srli_epi16(h0, 2);
        const __m512i b1 = shift >= 0 ? _mm512_slli_epi16(h1, shift) : _mm512_srli_epi16(h1, 2);
        _mm512_store_si512(u + 320 + (8 * p + l) * 64,
                           _mm512_or_si512(_mm512_and_si512(v, low4), _mm512_and_si512(b0, two)));
        _mm512_store_si512(u + 320 + (8 * p + 4 + l) * 64,
                           _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), low4),
                                           _mm512_and_si512(b1, two)));
      }
    }
  }
}

// q6_K on an unpacked group: per 16-level sub-block one int32 sum per token started at -32 x its
// activation sum, scaled into sumi in int32; float steps as in Q6KN.
template <int N>
void Q6KU(const uint8_t* group, const QActs& a, int64_t t0, float* out, int64_t ldo) {
  __m512 acc[N];
  for (int i = 0; i < N; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < a.blocks; ++b) {
    const uint8_t* o = group + b * kUnpackedBytes;
    const int8_t* q[N];
    const int32_t* side[N];
    Q8KBlockPointers(a, t0, b, q, side);
    __m512i sumi[N];
    for (int i = 0; i < N; ++i) sumi[i] = _mm512_setzero_si512();
    for (int s = 0; s < 16; ++s) {
      __m512i part[N];
      for (int i = 0; i < N; ++i) part[i] = _mm512_set1_epi32(-32 * side[i][s]);
      for (int l = 0; l < 4; ++l) {
        const __m512i w = Line(o + 320 + (4 * s + l) * 64);
        for (int i = 0; i < N; ++i) {
          part[i] = _mm512_dpbusd_epi32(part[i], w, Bcast(q[i] + 16 * s + 4 * l));
        }
      }
      const __m512i sc =
          _mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(o + 32 + s * 16)));
      for (int i = 0; i < N; ++i) {
        sumi[i] = _mm512_add_epi32(sumi[i], _mm512_mullo_epi32(part[i], sc));
      }
    }
    AddBlock(a, t0, b, Scales16(o), sumi, acc);
  }
  for (int i = 0; i < N; ++i) _mm512_storeu_ps(out + i * ldo, acc[i]);
}

constexpr TileFn kQ8_0Fns[] = {Blocks32N<true, 1>, Blocks32N<true, 2>, Blocks32N<true, 3>,
                               Blocks32N<true, 4>, Blocks32N<true, 5>, Blocks32N<true, 6>,
                               Blocks32N<true, 7>, Blocks32N<true, 8>};
constexpr TileFn kQ4_0Fns[] = {Blocks32N<false, 1>, Blocks32N<false, 2>, Blocks32N<false, 3>,
                               Blocks32N<false, 4>, Blocks32N<false, 5>, Blocks32N<false, 6>,
                               Blocks32N<false, 7>, Blocks32N<false, 8>};
constexpr TileFn kQ4KFns[] = {Q4KN<false, 1>, Q4KN<false, 2>, Q4KN<false, 3>, Q4KN<true, 4>,
                              Q4KN<true, 5>,  Q4KN<true, 6>,  Q4KN<true, 7>,  Q4KN<true, 8>};
constexpr TileFn kQ6KFns[] = {Q6KN<1>, Q6KN<2>, Q6KN<3>, Q6KN<4>, Q6KN<5>};
constexpr TileFn kQ6KUFns[] = {Q6KU<1>, Q6KU<2>, Q6KU<3>, Q6KU<4>,
                               Q6KU<5>, Q6KU<6>, Q6KU<7>, Q6KU<8>};

}  // namespace

QGemmKernel GetQGemmKernel(DType t) {
  switch (t) {
    case DType::kQ8_0:
      return {Tiles<8, kQ8_0Fns>, 8};
    case DType::kQ4_0:
      return {Tiles<8, kQ4_0Fns>, 8};
    case DType::kQ4_K:
      return {Tiles<8, kQ4KFns>, 8};
    case DType::kQ6_K:
      return {Tiles<5, kQ6KFns>, 5, UnpackQ6K, Tiles<8, kQ6KUFns>, 8};
    default:
      return {};
  }
}

}  // namespace herd::kernels::avx512
