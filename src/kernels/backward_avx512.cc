// AVX-512 F level of RMSNorm (kernels/ops.h) and kernels/backward.h's RMSNormBackwardRows: 8
// doubles per step (masked in the last, partial one), the scalar definitions' operations lane by
// lane.
#include "kernels/backward.h"
#include "kernels/immintrin_avx512.h"
#include "kernels/ops.h"
#include "kernels/rms_impl.h"

namespace herd::kernels::avx512 {

// A square of a float is exact in double, so the FMA adds what the scalar definition adds.
float RMSNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  __m512d part = _mm512_setzero_pd();  // element j into lane j mod 8
  for (int64_t j = 0; j < n; j += 8) {
    const __mmask8 m = static_cast<__mmask8>(n - j >= 8 ? 0xff : (1u << (n - j)) - 1);
    const __m512d xv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, x + j));
    part = _mm512_mask3_fmadd_pd(xv, xv, part, m);
  }
  double p[8];
  _mm512_storeu_pd(p, part);
  const float scale = rms_impl::Scale(p, n, eps);
  const __m512 s = _mm512_set1_ps(scale);
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = static_cast<__mmask16>(n - j >= 16 ? 0xffff : (1u << (n - j)) - 1);
    const __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + j), s),
                                   _mm512_maskz_loadu_ps(m, weight + j));
    _mm512_mask_storeu_ps(out + j, m, y);
  }
  return scale;
}

void RMSNormBackwardRows(const float* x, const float* weight, const float* dy, const float* r,
                         int64_t rows, int64_t n, float* dx, double* colsum) {
  auto mask_for = [n](int64_t j) {
    return static_cast<__mmask8>(n - j >= 8 ? 0xff : (1u << (n - j)) - 1);
  };
  for (int64_t row = 0; row < rows; ++row, x += n, dy += n, dx += n) {
    const double rd = r[row];
    __m512d part = _mm512_setzero_pd();  // element j into lane j mod 8
    for (int64_t j = 0; j < n; j += 8) {
      const __mmask8 m = mask_for(j);
      const __m512d d = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, dy + j));
      const __m512d w = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, weight + j));
      const __m512d xv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, x + j));
      part = _mm512_mask3_fmadd_pd(_mm512_mul_pd(d, w), xv, part, m);
    }
    double p[8];
    _mm512_storeu_pd(p, part);
    const double dot = rms_impl::Combine8(p);
    const double c = rd * rd * rd * dot / static_cast<double>(n);
    const __m512d vr = _mm512_set1_pd(rd), neg_c = _mm512_set1_pd(-c);
    for (int64_t j = 0; j < n; j += 8) {
      const __mmask8 m = mask_for(j);
      const __m512d d = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, dy + j));
      const __m512d w = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, weight + j));
      const __m512d xv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, x + j));
      const __m512d u = _mm512_fmadd_pd(neg_c, xv, _mm512_mul_pd(_mm512_mul_pd(vr, d), w));
      const __m256 sum = _mm256_add_ps(_mm256_maskz_loadu_ps(m, dx + j), _mm512_cvtpd_ps(u));
      _mm256_mask_storeu_ps(dx + j, m, sum);
      const __m512d cs =
          _mm512_fmadd_pd(_mm512_mul_pd(d, xv), vr, _mm512_maskz_loadu_pd(m, colsum + j));
      _mm512_mask_storeu_pd(colsum + j, m, cs);
    }
  }
}

}  // namespace herd::kernels::avx512
