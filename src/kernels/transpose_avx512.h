// In-register 16 x 16 float transpose for files built with AVX-512 flags (the GEMM's weight
// panels, attention's key tiles).
#pragma once

#include "kernels/immintrin_avx512.h"

namespace herd::kernels::avx512 {

// r[i] element j -> r[j] element i.
inline void Transpose16(__m512 r[16]) {
  __m512 t[16], u[16], x[16];
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  for (int k = 0; k < 4; ++k) {  // u[4k + m], lane L: rows 4k..4k+3 at column 4L + m
    u[4 * k] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
    u[4 * k + 1] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], 0xEE);
    u[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
    u[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {
    x[m] = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88);
    x[4 + m] = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD);
    x[8 + m] = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
    x[12 + m] = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
  }
  for (int m = 0; m < 4; ++m) {
    r[m] = _mm512_shuffle_f32x4(x[m], x[8 + m], 0x88);
    r[8 + m] = _mm512_shuffle_f32x4(x[m], x[8 + m], 0xDD);
    r[4 + m] = _mm512_shuffle_f32x4(x[4 + m], x[12 + m], 0x88);
    r[12 + m] = _mm512_shuffle_f32x4(x[4 + m], x[12 + m], 0xDD);
  }
}

}  // namespace herd::kernels::avx512
