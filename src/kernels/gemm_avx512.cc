// AVX-512 F micro-kernel for kernels/gemm.h: a tile of up to 12 rows x 32 columns of C in 24 zmm
// accumulators; per k step two loads of the B panel, a broadcast of each row's A value and 24 FMAs.
#include <utility>

#include "kernels/gemm.h"
#include "kernels/immintrin_avx512.h"

namespace herd::kernels::avx512 {
namespace {

constexpr int kMr = 12, kNr = 32;

template <int R>
void Micro(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, bool load) {
  __m512 acc[R][2];
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) {
    acc[i][0] = load ? _mm512_loadu_ps(c + i * ldc) : _mm512_setzero_ps();
    acc[i][1] = load ? _mm512_loadu_ps(c + i * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < kc; ++p, ap += R, bp += kNr) {
    const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      const __m512 a = _mm512_set1_ps(ap[i]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) {
    _mm512_storeu_ps(c + i * ldc, acc[i][0]);
    _mm512_storeu_ps(c + i * ldc + 16, acc[i][1]);
  }
}

template <int... R>
void Dispatch(int rows, int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
              bool load, std::integer_sequence<int, R...>) {
  using Fn = void (*)(int64_t, const float*, const float*, float*, int64_t, bool);
  static constexpr Fn kFns[] = {Micro<R + 1>...};
  kFns[rows - 1](kc, ap, bp, c, ldc, load);
}

void MicroAny(int rows, int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
              bool load) {
  Dispatch(rows, kc, ap, bp, c, ldc, load, std::make_integer_sequence<int, kMr>{});
}

}  // namespace

GemmMicroKernel GetGemmKernel() { return {kMr, kNr, MicroAny}; }

}  // namespace herd::kernels::avx512
