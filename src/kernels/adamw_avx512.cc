// AVX-512 F level of kernels/adamw.h: 16 elements per step (the last, partial one under a mask),
// the scalar definition's operations lane by lane.
#include "kernels/adamw.h"
#include "kernels/immintrin_avx512.h"

namespace herd::kernels::avx512 {

void AdamWUpdate(const AdamWConstants& k, float* g, float* w, float* m, float* v, int64_t n) {
  const __m512 b1 = _mm512_set1_ps(k.b1), c1 = _mm512_set1_ps(k.c1);
  const __m512 b2 = _mm512_set1_ps(k.b2), c2 = _mm512_set1_ps(k.c2);
  const __m512 inv_bc2 = _mm512_set1_ps(k.inv_bc2), eps = _mm512_set1_ps(k.eps);
  const __m512 step = _mm512_set1_ps(k.step), decay = _mm512_set1_ps(k.decay);
  const __m512 grad_scale = _mm512_set1_ps(k.grad_scale);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask =
        n - i >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 gi = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, g + i), grad_scale);
    if (k.zero_grad) _mm512_mask_storeu_ps(g + i, mask, _mm512_setzero_ps());
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

}  // namespace herd::kernels::avx512
