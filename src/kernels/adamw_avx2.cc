// AVX2 + FMA level of kernels/adamw.h: 8 elements per step, the scalar definition's operations
// lane by lane; the last n % 8 elements by the scalar definition (the same bits).
#include <immintrin.h>

#include "kernels/adamw.h"
#include "kernels/adamw_impl.h"

namespace herd::kernels::avx2 {

void AdamWUpdate(const AdamWConstants& k, const float* g, float* w, float* m, float* v, int64_t n) {
  const __m256 b1 = _mm256_set1_ps(k.b1), c1 = _mm256_set1_ps(k.c1);
  const __m256 b2 = _mm256_set1_ps(k.b2), c2 = _mm256_set1_ps(k.c2);
  const __m256 inv_bc2 = _mm256_set1_ps(k.inv_bc2), eps = _mm256_set1_ps(k.eps);
  const __m256 step = _mm256_set1_ps(k.step), decay = _mm256_set1_ps(k.decay);
  const __m256 grad_scale = _mm256_set1_ps(k.grad_scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gi = _mm256_mul_ps(_mm256_loadu_ps(g + i), grad_scale);
    const __m256 mi = _mm256_fmadd_ps(b1, _mm256_loadu_ps(m + i), _mm256_mul_ps(c1, gi));
    const __m256 vi =
        _mm256_fmadd_ps(b2, _mm256_loadu_ps(v + i), _mm256_mul_ps(_mm256_mul_ps(c2, gi), gi));
    const __m256 d = _mm256_fmadd_ps(_mm256_sqrt_ps(vi), inv_bc2, eps);
    const __m256 u = _mm256_div_ps(_mm256_mul_ps(step, mi), d);
    _mm256_storeu_ps(w + i, _mm256_fmsub_ps(_mm256_loadu_ps(w + i), decay, u));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
  }
  adamw_impl::Update(k, g, w, m, v, i, n);
}

// 8 floats per step: the parts added, then the squares into the 8 partial sums (two vectors of 4);
// the last n % 8 by the scalar definition.
double AddParts(float* g, std::span<const float* const> parts, int64_t n, bool squares) {
  __m256d acc_lo = _mm256_setzero_pd(), acc_hi = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_loadu_ps(g + i);
    if (!parts.empty()) {
      for (const float* part : parts) x = _mm256_add_ps(x, _mm256_loadu_ps(part + i));
      _mm256_storeu_ps(g + i, x);
    }
    if (squares) {
      const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
      const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
      acc_lo = _mm256_add_pd(acc_lo, _mm256_mul_pd(lo, lo));
      acc_hi = _mm256_add_pd(acc_hi, _mm256_mul_pd(hi, hi));
    }
  }
  double s[8];
  _mm256_storeu_pd(s, acc_lo);
  _mm256_storeu_pd(s + 4, acc_hi);
  adamw_impl::AddParts(g, parts, i, n, squares, s);
  return squares ? adamw_impl::Combine8(s) : 0.0;
}

}  // namespace herd::kernels::avx2
