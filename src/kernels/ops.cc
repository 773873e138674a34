#include "kernels/ops.h"

#include <algorithm>
#include <cmath>

#include "kernels/expsum.h"
#include "kernels/expsum_impl.h"
#include "kernels/rms_impl.h"

namespace herd::kernels {

float RMSNorm(const float* x, const float* weight, int64_t n, float eps, float* out, Isa isa) {
  if (isa >= Isa::kAvx512) return avx512::RMSNorm(x, weight, n, eps, out);
  return rms_impl::RMSNorm(x, weight, n, eps, out);
}

void RopeInterleaved(float* x, int n_heads, int head_dim, const float* cos, const float* sin) {
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    for (int i = 0; i < head_dim / 2; ++i) {
      const float a = v[2 * i], b = v[2 * i + 1];
      v[2 * i] = a * cos[i] - b * sin[i];
      v[2 * i + 1] = a * sin[i] + b * cos[i];
    }
  }
}

void SwiGLU(const float* gate, const float* up, int64_t n, float* out, Isa isa) {
  // kernels/expsum.h: the SIMD levels compute the scalar definition's bits.
  if (isa >= Isa::kAvx512) return avx512::SwiGLU(gate, up, n, out);
  if (isa >= Isa::kAvx2) return avx2::SwiGLU(gate, up, n, out);
  expsum_impl::SwiGLU(gate, up, 0, n, out);
}

void Softmax(float* x, int64_t n) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = max == -INFINITY ? 0.0f : std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = sum > 0 ? static_cast<float>(1.0 / sum) : 0.0f;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void Add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void Add(const float* x, const float* y, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] + y[i];
}

}  // namespace herd::kernels
