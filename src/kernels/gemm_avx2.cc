// AVX2 + FMA micro-kernel for kernels/gemm.h: a tile of up to 6 rows x 16 columns of C in 12 ymm
// accumulators; per k step two loads of the B panel, a broadcast of each row's A value and 12 FMAs.
#include <immintrin.h>

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

}  // namespace

GemmMicroKernel GetGemmKernel() { return {kMr, kNr, MicroAny}; }

}  // namespace herd::kernels::avx2
