// AVX2 + FMA + F16C row operations for attention_impl.h (compiled with -mavx2 -mfma -mf16c).
#include <immintrin.h>

#include "kernels/attention_impl.h"
#include "kernels/convert.h"

namespace herd::kernels::avx2 {
namespace {

using attention_impl::BF16Elem;
using attention_impl::F16Elem;

inline __m256 Load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 Load8(const F16Elem* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 Load8(const BF16Elem* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline float ToFloat(float x) { return x; }
inline float ToFloat(F16Elem x) { return _cvtsh_ss(x.bits); }
inline float ToFloat(BF16Elem x) { return BF16ToF32(x.bits); }

inline float Hsum(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

template <typename T>
struct Ops {
  static float Dot(const float* q, const T* k, int d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= d; i += 16) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), Load8(k + i), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), Load8(k + i + 8), a1);
    }
    for (; i + 8 <= d; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), Load8(k + i), a0);
    float s = Hsum(_mm256_add_ps(a0, a1));
    for (; i < d; ++i) s += q[i] * ToFloat(k[i]);
    return s;
  }
  static void Axpy(float a, const T* v, float* acc, int d) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= d; i += 8)
      _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(va, Load8(v + i), _mm256_loadu_ps(acc + i)));
    for (; i < d; ++i) acc[i] += a * ToFloat(v[i]);
  }
  static void Scale(float* acc, float c, int d) {
    const __m256 vc = _mm256_set1_ps(c);
    int i = 0;
    for (; i + 8 <= d; i += 8)
      _mm256_storeu_ps(acc + i, _mm256_mul_ps(vc, _mm256_loadu_ps(acc + i)));
    for (; i < d; ++i) acc[i] *= c;
  }
};

}  // namespace

void AttentionRange(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s,
                    float* out, size_t item_begin, size_t item_end) {
  attention_impl::AttentionRangeAnyType<Ops>(q, kv, start_pos, s, out, item_begin, item_end);
}

}  // namespace herd::kernels::avx2
