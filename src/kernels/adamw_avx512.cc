// AVX-512 F level of kernels/adamw.h: 16 elements per step (the last, partial one under a mask),
// the scalar definition's operations lane by lane.
#include "kernels/adamw.h"
#include "kernels/adamw_impl.h"
#include "kernels/immintrin_avx512.h"

namespace herd::kernels::avx512 {

void AdamWUpdate(const AdamWConstants& k, const float* g, float* w, float* m, float* v, int64_t n) {
  const __m512 b1 = _mm512_set1_ps(k.b1), c1 = _mm512_set1_ps(k.c1);
  const __m512 b2 = _mm512_set1_ps(k.b2), c2 = _mm512_set1_ps(k.c2);
  const __m512 inv_bc2 = _mm512_set1_ps(k.inv_bc2), eps = _mm512_set1_ps(k.eps);
  const __m512 step = _mm512_set1_ps(k.step), decay = _mm512_set1_ps(k.decay);
  const __m512 grad_scale = _mm512_set1_ps(k.grad_scale);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask =
        n - i >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 gi = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, g + i), grad_scale);
    const __m512 mi =
        _mm512_fmadd_ps(b1, _mm512_maskz_loadu_ps(mask, m + i), _mm512_mul_ps(c1, gi));
    const __m512 vi = _mm512_fmadd_ps(b2, _mm512_maskz_loadu_ps(mask, v + i),
                                      _mm512_mul_ps(_mm512_mul_ps(c2, gi), gi));
    const __m512 d = _mm512_fmadd_ps(_mm512_sqrt_ps(vi), inv_bc2, eps);
    const __m512 u = _mm512_div_ps(_mm512_mul_ps(step, mi), d);
    _mm512_mask_storeu_ps(w + i, mask,
                          _mm512_fmsub_ps(_mm512_maskz_loadu_ps(mask, w + i), decay, u));
    _mm512_mask_storeu_ps(m + i, mask, mi);
    _mm512_mask_storeu_ps(v + i, mask, vi);
  }
}

// 16 floats per step: the parts added, then the squares of elements 0-7 into the 8 partial sums,
// then those of 8-15 (the scalar order); the last n % 16 by the scalar definition.
double AddParts(float* g, std::span<const float* const> parts, int64_t n, bool squares) {
  __m512d acc = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 x = _mm512_loadu_ps(g + i);
    if (!parts.empty()) {
      for (const float* part : parts) x = _mm512_add_ps(x, _mm512_loadu_ps(part + i));
      _mm512_storeu_ps(g + i, x);
    }
    if (squares) {
      const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
      const __m512d hi =
          _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
      acc = _mm512_add_pd(acc, _mm512_mul_pd(lo, lo));
      acc = _mm512_add_pd(acc, _mm512_mul_pd(hi, hi));
    }
  }
  double s[8];
  _mm512_storeu_pd(s, acc);
  adamw_impl::AddParts(g, parts, i, n, squares, s);
  return squares ? adamw_impl::Combine8(s) : 0.0;
}

}  // namespace herd::kernels::avx512
