// AVX-512 F level of kernels/expsum.h: 16 exponentials per step, the same operations as
// expsum_impl::Exp lane by lane; lanes 0-7 and 8-15 summed in two vectors of doubles.
#include "kernels/expsum.h"
#include "kernels/expsum_impl.h"
#include "kernels/immintrin_avx512.h"

namespace herd::kernels::avx512 {
namespace {

using namespace expsum_impl;

inline __m512 Exp16(__m512 y) {
  const __m512 c = _mm512_max_ps(_mm512_min_ps(y, _mm512_set1_ps(kHi)), _mm512_set1_ps(kLo));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(c, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-kLn2Hi), c);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(-kLn2Lo), r);
  const __m512 z = _mm512_mul_ps(r, r);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(kC0), r, _mm512_set1_ps(kC1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kC2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kC3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kC4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kC5));
  p = _mm512_fmadd_ps(p, z, r);
  p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
  // p 2^n in one instruction: exact, as the scalar definition's multiplication by 2^n (n >= -126).
  __m512 e = _mm512_scalef_ps(p, n);
  e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(y, _mm512_set1_ps(kLo), _CMP_LT_OQ),
                         _mm512_setzero_ps());
  return _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(y, y, _CMP_UNORD_Q), y);
}

}  // namespace

// The last n % 16 elements go through the same vector code under a mask: lane i of that step is
// element i mod 16, as in expsum_impl::Tail, and the masked-off lanes add +0.0 to their sums (which
// are >= +0.0), so the sums are the same bits as Tail's.
double ExpShiftSum(const float* x, int64_t n, float shift, float* out) {
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  const __m512 s = _mm512_set1_ps(shift);
  for (int64_t i = 0; i < n; i += kLanes) {
    const __mmask16 mask =
        n - i >= kLanes ? __mmask16{0xffff} : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 e =
        _mm512_maskz_mov_ps(mask, Exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), s)));
    if (out) _mm512_mask_storeu_ps(out + i, mask, e);
    lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    hi = _mm512_add_pd(
        hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  double sums[kLanes];
  _mm512_storeu_pd(sums, lo);
  _mm512_storeu_pd(sums + 8, hi);
  return Combine(sums);
}

void SwiGLU(const float* gate, const float* up, int64_t n, float* out) {
  const __m512 one = _mm512_set1_ps(1.0f), minus = _mm512_set1_ps(-1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask =
        n - i >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 z = _mm512_maskz_loadu_ps(mask, gate + i);
    const __m512 e = Exp16(_mm512_mul_ps(minus, z));
    _mm512_mask_storeu_ps(out + i, mask,
                          _mm512_mul_ps(_mm512_div_ps(z, _mm512_add_ps(one, e)),
                                        _mm512_maskz_loadu_ps(mask, up + i)));
  }
}

void SwiGLUBackward(const float* gate, const float* up, const float* dy, int64_t n, float* dgate,
                    float* dup) {
  const __m512 one = _mm512_set1_ps(1.0f), minus = _mm512_set1_ps(-1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask =
        n - i >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 z = _mm512_maskz_loadu_ps(mask, gate + i);
    const __m512 d = _mm512_maskz_loadu_ps(mask, dy + i);
    const __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, Exp16(_mm512_mul_ps(minus, z))));
    const __m512 g =
        _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(d, _mm512_maskz_loadu_ps(mask, up + i)), s),
                      _mm512_fmadd_ps(z, _mm512_sub_ps(one, s), one));
    _mm512_mask_storeu_ps(dup + i, mask, _mm512_mul_ps(d, _mm512_mul_ps(z, s)));
    _mm512_mask_storeu_ps(dgate + i, mask, g);
  }
}

float MaxOf(const float* x, int64_t n) {
  // vmaxps returns its second operand when either is NaN: NaNs never reach the running maxima.
  const __m512 lowest = _mm512_set1_ps(-INFINITY);
  __m512 best = lowest;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask =
        n - i >= 16 ? __mmask16{0xffff} : static_cast<__mmask16>((1u << (n - i)) - 1);
    best = _mm512_max_ps(_mm512_mask_loadu_ps(lowest, mask, x + i), best);
  }
  return _mm512_reduce_max_ps(best);
}

}  // namespace herd::kernels::avx512
