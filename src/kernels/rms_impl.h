// Shared by the levels of RMSNorm (kernels/ops.h) and kernels/backward.h's RMSNormBackwardRows:
// the fixed tree over their 8 partial sums, and the forward's scalar definition.
#pragma once

#include <cmath>
#include <cstdint>

namespace herd::kernels::rms_impl {

inline double Combine8(const double* p) {
  return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
}

// RMSNorm's scale from the 8 partial sums of squares.
inline float Scale(const double* p, int64_t n, float eps) {
  return static_cast<float>(1.0 / std::sqrt(Combine8(p) / static_cast<double>(n) + eps));
}

inline float RMSNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  double p[8] = {};
  for (int64_t i = 0; i < n; ++i) p[i % 8] += static_cast<double>(x[i]) * x[i];
  const float scale = Scale(p, n, eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
  return scale;
}

}  // namespace herd::kernels::rms_impl
