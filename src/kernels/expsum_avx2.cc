// AVX2 + FMA level of kernels/expsum.h: 8 exponentials per vector, two vectors per step, the same
// operations as expsum_impl::Exp lane by lane; 16 lanes summed in four vectors of doubles.
#include <immintrin.h>

#include <algorithm>

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

// The last n % 16 elements go through the same vector code from a zero-padded copy, the padding
// lanes' exponentials zeroed: lane i of that step is element i mod 16, as in expsum_impl::Tail, and
// the zeroed lanes add +0.0 to their sums (which are >= +0.0), so the sums are the same bits.
double ExpShiftSum(const float* x, int64_t n, float shift, float* out) {
  __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                    _mm256_setzero_pd()};
  const __m256 s = _mm256_set1_ps(shift);
  auto step = [&](const float* src, float* dst, int count) {
    __m256 e0 = Exp8(_mm256_sub_ps(_mm256_loadu_ps(src), s));
    __m256 e1 = Exp8(_mm256_sub_ps(_mm256_loadu_ps(src + 8), s));
    if (count < kLanes) {  // zero the lanes >= count
      const __m256 lane = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
      const __m256 c = _mm256_set1_ps(static_cast<float>(count));
      e0 = _mm256_and_ps(e0, _mm256_cmp_ps(lane, c, _CMP_LT_OQ));
      e1 = _mm256_and_ps(e1, _mm256_cmp_ps(_mm256_add_ps(lane, _mm256_set1_ps(8)), c, _CMP_LT_OQ));
    }
    if (dst) _mm256_storeu_ps(dst, e0), _mm256_storeu_ps(dst + 8, e1);
    acc[0] = _mm256_add_pd(acc[0], _mm256_cvtps_pd(_mm256_castps256_ps128(e0)));
    acc[1] = _mm256_add_pd(acc[1], _mm256_cvtps_pd(_mm256_extractf128_ps(e0, 1)));
    acc[2] = _mm256_add_pd(acc[2], _mm256_cvtps_pd(_mm256_castps256_ps128(e1)));
    acc[3] = _mm256_add_pd(acc[3], _mm256_cvtps_pd(_mm256_extractf128_ps(e1, 1)));
  };
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) step(x + i, out ? out + i : nullptr, kLanes);
  if (i < n) {
    const int count = static_cast<int>(n - i);
    float in[kLanes] = {}, e[kLanes];
    std::copy_n(x + i, count, in);
    step(in, e, count);
    if (out) std::copy_n(e, count, out + i);
  }
  double sums[kLanes];
  for (int k = 0; k < 4; ++k) _mm256_storeu_pd(sums + 4 * k, acc[k]);
  return Combine(sums);
}

void SwiGLU(const float* gate, const float* up, int64_t n, float* out) {
  const __m256 one = _mm256_set1_ps(1.0f), minus = _mm256_set1_ps(-1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 z = _mm256_loadu_ps(gate + i);
    const __m256 e = Exp8(_mm256_mul_ps(minus, z));
    _mm256_storeu_ps(
        out + i, _mm256_mul_ps(_mm256_div_ps(z, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
  }
  expsum_impl::SwiGLU(gate, up, i, n, out);
}

void SwiGLUBackward(const float* gate, const float* up, const float* dy, int64_t n, float* dgate,
                    float* dup) {
  const __m256 one = _mm256_set1_ps(1.0f), minus = _mm256_set1_ps(-1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 z = _mm256_loadu_ps(gate + i), d = _mm256_loadu_ps(dy + i);
    const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, Exp8(_mm256_mul_ps(minus, z))));
    const __m256 g = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(d, _mm256_loadu_ps(up + i)), s),
                                   _mm256_fmadd_ps(z, _mm256_sub_ps(one, s), one));
    _mm256_storeu_ps(dup + i, _mm256_mul_ps(d, _mm256_mul_ps(z, s)));
    _mm256_storeu_ps(dgate + i, g);
  }
  expsum_impl::SwiGLUBackward(gate, up, dy, i, n, dgate, dup);
}

}  // namespace herd::kernels::avx2
