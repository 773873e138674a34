// AVX2 + FMA micro-kernel for kernels/gemm.h: a tile of up to 6 rows x 16 columns of C in 12 ymm
// accumulators; per k step two loads of the B panel, a broadcast of each row's A value and 12 FMAs.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "kernels/gemm.h"

namespace herd::kernels::avx2 {
namespace {

constexpr int kMr = 6, kNr = 16;

// A(i, p) at ap[p * R + i] (a packed panel) or, with lda > 0, at ap[i * lda + p] (rows of A read
// in place).
template <int R, bool kInPlace>
void Micro(int64_t kc, const float* ap, int64_t lda, const float* bp, float* c, int64_t ldc,
           bool load) {
  __m256 acc[R][2];
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) {
    acc[i][0] = load ? _mm256_loadu_ps(c + i * ldc) : _mm256_setzero_ps();
    acc[i][1] = load ? _mm256_loadu_ps(c + i * ldc + 8) : _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < kc; ++p, bp += kNr) {
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      const __m256 a = _mm256_set1_ps(kInPlace ? ap[i * lda + p] : ap[p * R + i]);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) {
    _mm256_storeu_ps(c + i * ldc, acc[i][0]);
    _mm256_storeu_ps(c + i * ldc + 8, acc[i][1]);
  }
}

template <int... R>
void Dispatch(int rows, int64_t kc, const float* ap, int64_t lda, const float* bp, float* c,
              int64_t ldc, bool load, std::integer_sequence<int, R...>) {
  using Fn = void (*)(int64_t, const float*, int64_t, const float*, float*, int64_t, bool);
  static constexpr Fn kPacked[] = {Micro<R + 1, false>...};
  static constexpr Fn kInPlace[] = {Micro<R + 1, true>...};
  (lda > 0 ? kInPlace : kPacked)[rows - 1](kc, ap, lda, bp, c, ldc, load);
}

void MicroAny(int rows, int64_t kc, const float* ap, int64_t lda, const float* bp, float* c,
              int64_t ldc, bool load) {
  Dispatch(rows, kc, ap, lda, bp, c, ldc, load, std::make_integer_sequence<int, kMr>{});
}

// In-register transpose of 8 rows of 8 floats: r[i] element j -> r[j] element i.
inline void Transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int k = 0; k < 4; ++k) {
    t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  for (int k = 0; k < 2; ++k) {  // u[4k + m], half L: rows 4k..4k+3 at column 4L + m
    u[4 * k] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
    u[4 * k + 1] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
    u[4 * k + 2] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
    u[4 * k + 3] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {
    r[m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x20);
    r[4 + m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x31);
  }
}

// The first n lanes set (maskload / maskstore).
inline __m256i LaneMask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// 8 (the first n, the rest 0) consecutive elements of type T from p, as floats (exact).
template <GemmType T>
inline __m256 Load8(const void* p, int n) {
  if constexpr (T == GemmType::kF32) {
    return n == 8 ? _mm256_loadu_ps(static_cast<const float*>(p))
                  : _mm256_maskload_ps(static_cast<const float*>(p), LaneMask(n));
  } else {
    __m128i h;
    if (n == 8) {
      h = _mm_loadu_si128(static_cast<const __m128i*>(p));
    } else {  // no 16-bit masked load in AVX2: through a zeroed buffer
      alignas(16) uint16_t tmp[8] = {};
      std::memcpy(tmp, p, static_cast<size_t>(n) * 2);
      h = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
    }
    if constexpr (T == GemmType::kF16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

// As the AVX-512 GemvT (gemm.h's GemvFn) for 8 columns: 8 rows of w, 8 elements at a time,
// transposed in registers and multiplied without packing.
template <int R, GemmType T>
void GemvT8(const float* a, int64_t lda, const void* w, int64_t ldw, int64_t k, int cols, float* c,
            int64_t ldc, bool load) {
  const __m256i cmask = LaneMask(cols);
  const int64_t size = T == GemmType::kF32 ? 4 : 2;
  __m256 acc[R];
  for (int i = 0; i < R; ++i)
    acc[i] = load ? _mm256_maskload_ps(c + i * ldc, cmask) : _mm256_setzero_ps();
  for (int64_t p0 = 0; p0 < k; p0 += 8) {
    const int n = static_cast<int>(std::min<int64_t>(8, k - p0));
    __m256 r[8];
    for (int j = 0; j < 8; ++j)
      r[j] = j < cols ? Load8<T>(static_cast<const uint8_t*>(w) + (j * ldw + p0) * size, n)
                      : _mm256_setzero_ps();
    Transpose8(r);
    for (int q = 0; q < n; ++q)
      for (int i = 0; i < R; ++i)
        acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(a[i * lda + p0 + q]), r[q], acc[i]);
  }
  for (int i = 0; i < R; ++i) _mm256_maskstore_ps(c + i * ldc, cmask, acc[i]);
}

template <GemmType T>
void GemvTRows(int rows, const float* a, int64_t lda, const void* w, int64_t ldw, int64_t k,
               int cols, float* c, int64_t ldc, bool load) {
  const int64_t size = T == GemmType::kF32 ? 4 : 2;
  for (int j = 0; j < cols; j += 8) {  // up to 16 columns: two groups of 8
    const int n = std::min(8, cols - j);
    const void* wj = static_cast<const uint8_t*>(w) + j * ldw * size;
    switch (rows) {
      case 1:
        GemvT8<1, T>(a, lda, wj, ldw, k, n, c + j, ldc, load);
        break;
      case 2:
        GemvT8<2, T>(a, lda, wj, ldw, k, n, c + j, ldc, load);
        break;
      case 3:
        GemvT8<3, T>(a, lda, wj, ldw, k, n, c + j, ldc, load);
        break;
      default:
        GemvT8<4, T>(a, lda, wj, ldw, k, n, c + j, ldc, load);
        break;
    }
  }
}

void GemvTAny(int rows, const float* a, int64_t lda, const void* w, GemmType type, int64_t ldw,
              int64_t k, int cols, float* c, int64_t ldc, bool load) {
  switch (type) {
    case GemmType::kBF16:
      return GemvTRows<GemmType::kBF16>(rows, a, lda, w, ldw, k, cols, c, ldc, load);
    case GemmType::kF16:
      return GemvTRows<GemmType::kF16>(rows, a, lda, w, ldw, k, cols, c, ldc, load);
    default:
      return GemvTRows<GemmType::kF32>(rows, a, lda, w, ldw, k, cols, c, ldc, load);
  }
}

}  // namespace

GemmMicroKernel GetGemmKernel() {
  return {kMr, kNr, MicroAny, nullptr, nullptr, nullptr, GemvTAny, /*gemv_max_rows=*/4};
}

}  // namespace herd::kernels::avx2
