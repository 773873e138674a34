// The constants and tail handling every level of kernels/expsum.h shares (included by expsum.cc
// and the per-ISA files only).
#pragma once

#include <cmath>
#include <cstdint>

namespace herd::kernels::expsum_impl {

constexpr int kLanes = 16;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;  // ln 2 = hi + lo
constexpr float kLo = -87.3365479f, kHi = 88.0f;  // exp(kLo) = FLT_MIN; n <= 127 up to kHi
// Cephes expf's polynomial: exp(r) ~ 1 + r + r^2 (c5 + r (c4 + r (c3 + ...))) on |r| <= ln2 / 2.
constexpr float kC0 = 1.9875691500e-4f, kC1 = 1.3981999507e-3f, kC2 = 8.3334519073e-3f,
                kC3 = 4.1665795894e-2f, kC4 = 1.6666665459e-1f, kC5 = 5.0000001201e-1f;

// The scalar definition; the SIMD levels perform the same operations lane-wise.
inline float Exp(float y) {
  const float t = y < kHi ? y : kHi;  // minps / maxps semantics (a NaN y becomes kHi here)
  const float c = t > kLo ? t : kLo;
  const float n = std::nearbyint(c * kLog2e);
  float r = std::fma(n, -kLn2Hi, c);
  r = std::fma(n, -kLn2Lo, r);
  const float z = r * r;
  float p = std::fma(kC0, r, kC1);
  p = std::fma(p, r, kC2);
  p = std::fma(p, r, kC3);
  p = std::fma(p, r, kC4);
  p = std::fma(p, r, kC5);
  p = std::fma(p, z, r);
  p = p + 1.0f;
  const int bits = (static_cast<int>(n) + 127) << 23;
  float scale;
  static_assert(sizeof(scale) == sizeof(bits));
  __builtin_memcpy(&scale, &bits, sizeof(bits));
  const float e = p * scale;
  if (std::isnan(y)) return y;
  return y < kLo ? 0.0f : e;
}

// Elements [begin, n) one by one into the partial sums (lane i mod 16); writes out if non-null.
inline void Tail(const float* x, int64_t begin, int64_t n, float shift, float* out, double* sums) {
  for (int64_t i = begin; i < n; ++i) {
    const float e = Exp(x[i] - shift);
    if (out) out[i] = e;
    sums[i % kLanes] += e;
  }
}

// SwiGLU's scalar definitions (kernels/ops.h, kernels/backward.h) for elements [begin, n); the
// SIMD levels perform the same operations lane by lane.
inline void SwiGLU(const float* gate, const float* up, int64_t begin, int64_t n, float* out) {
  for (int64_t i = begin; i < n; ++i) out[i] = gate[i] / (1.0f + Exp(-1.0f * gate[i])) * up[i];
}
inline void SwiGLUBackward(const float* gate, const float* up, const float* dy, int64_t begin,
                           int64_t n, float* dgate, float* dup) {
  for (int64_t i = begin; i < n; ++i) {
    const float z = gate[i], s = 1.0f / (1.0f + Exp(-1.0f * z));
    const float g = dy[i] * up[i] * s * std::fma(z, 1.0f - s, 1.0f);
    dup[i] = dy[i] * (z * s);
    dgate[i] = g;
  }
}

// The fixed tree over the 16 partial sums.
inline double Combine(const double* s) {
  double t[8];
  for (int i = 0; i < 8; ++i) t[i] = s[i] + s[i + 8];
  for (int i = 0; i < 4; ++i) t[i] += t[i + 4];
  return (t[0] + t[2]) + (t[1] + t[3]);
}

}  // namespace herd::kernels::expsum_impl
