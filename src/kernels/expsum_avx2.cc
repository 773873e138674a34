// AVX2 + FMA level of kernels/expsum.h: 8 exponentials per vector, two vectors per step, the same
// operations as expsum_impl::Exp lane by lane; 16 lanes summed in four vectors of doubles.
#include <immintrin.h>

#include "kernels/expsum.h"
#include "kernels/expsum_impl.h"

namespace herd::kernels::avx2 {
namespace {

using namespace expsum_impl;

inline __m256 Exp8(__m256 y) {
  const __m256 c = _mm256_max_ps(_mm256_min_ps(y, _mm256_set1_ps(kHi)), _mm256_set1_ps(kLo));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(c, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-kLn2Hi), c);
  r = _mm256_fmadd_ps(n, _mm256_set1_ps(-kLn2Lo), r);
  const __m256 z = _mm256_mul_ps(r, r);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(kC0), r, _mm256_set1_ps(kC1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC5));
  p = _mm256_fmadd_ps(p, z, r);
  p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
  const __m256i bits =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  e = _mm256_blendv_ps(e, _mm256_setzero_ps(), _mm256_cmp_ps(y, _mm256_set1_ps(kLo), _CMP_LT_OQ));
  return _mm256_blendv_ps(e, y, _mm256_cmp_ps(y, y, _CMP_UNORD_Q));
}

}  // namespace

double ExpShiftSum(const float* x, int64_t n, float shift, float* out) {
  __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                    _mm256_setzero_pd()};
  const __m256 s = _mm256_set1_ps(shift);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m256 e0 = Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
    const __m256 e1 = Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), s));
    if (out) _mm256_storeu_ps(out + i, e0), _mm256_storeu_ps(out + i + 8, e1);
    acc[0] = _mm256_add_pd(acc[0], _mm256_cvtps_pd(_mm256_castps256_ps128(e0)));
    acc[1] = _mm256_add_pd(acc[1], _mm256_cvtps_pd(_mm256_extractf128_ps(e0, 1)));
    acc[2] = _mm256_add_pd(acc[2], _mm256_cvtps_pd(_mm256_castps256_ps128(e1)));
    acc[3] = _mm256_add_pd(acc[3], _mm256_cvtps_pd(_mm256_extractf128_ps(e1, 1)));
  }
  double sums[kLanes];
  for (int k = 0; k < 4; ++k) _mm256_storeu_pd(sums + 4 * k, acc[k]);
  Tail(x, i, n, shift, out, sums);
  return Combine(sums);
}

void ExpScaled(const float* x, int64_t n, float scale, float* out) {
  const __m256 s = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, Exp8(_mm256_mul_ps(s, _mm256_loadu_ps(x + i))));
  for (; i < n; ++i) out[i] = Exp(scale * x[i]);
}

}  // namespace herd::kernels::avx2
