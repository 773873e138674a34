#include "kernels/backward.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/check.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"

namespace herd::kernels {

float RMSNormScale(const float* x, int64_t n, float eps) {
  double ss = 0;  // as RMSNorm: the mean of squares in double, the scale rounded to float once
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  return static_cast<float>(1.0 / std::sqrt(ss / n + eps));
}

void RMSNormBackward(const float* x, const float* weight, const float* dy, int64_t n, float eps,
                     float* dx) {
  const double r = RMSNormScale(x, n, eps);
  double dot = 0;  // sum_j dy_j w_j x_j
  for (int64_t i = 0; i < n; ++i) dot += static_cast<double>(dy[i]) * weight[i] * x[i];
  const double c = r * r * r * dot / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) dx[i] = static_cast<float>(r * dy[i] * weight[i] - c * x[i]);
}

void RopeInterleavedBackward(float* dx, int n_heads, int head_dim, const float* cos,
                             const float* sin) {
  for (int h = 0; h < n_heads; ++h) {
    float* g = dx + static_cast<int64_t>(h) * head_dim;
    for (int i = 0; i < head_dim / 2; ++i) {
      const float a = g[2 * i], b = g[2 * i + 1];
      g[2 * i] = a * cos[i] + b * sin[i];
      g[2 * i + 1] = -a * sin[i] + b * cos[i];
    }
  }
}

void SwiGLUBackward(const float* gate, const float* up, const float* dy, int64_t n, float* dgate,
                    float* dup) {
  for (int64_t i = 0; i < n; ++i) {
    const float z = gate[i];
    const float s = 1.0f / (1.0f + std::exp(-z));
    const float silu = z * s;
    dup[i] = dy[i] * silu;
    dgate[i] = dy[i] * up[i] * s * (1.0f + z * (1.0f - s));
  }
}

void AttentionBackward(const float* q, const float* k, const float* v, const float* out,
                       const float* dout, int64_t n_tokens, const AttentionShape& s, int kv_head,
                       float* dq, float* dk, float* dv) {
  CHECK(s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0);
  const int d = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const int64_t q_stride = int64_t{s.n_heads} * d, kv_stride = int64_t{s.n_kv_heads} * d;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const int64_t kv_off = int64_t{kv_head} * d;
  for (int64_t j = 0; j < n_tokens; ++j) {
    std::fill_n(dk + j * kv_stride + kv_off, d, 0.0f);
    std::fill_n(dv + j * kv_stride + kv_off, d, 0.0f);
  }
  thread_local std::vector<double> p, acc;
  p.resize(n_tokens);
  acc.resize(d);
  for (int g = 0; g < group; ++g) {
    const int64_t q_off = (int64_t{kv_head} * group + g) * d;
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* qt = q + t * q_stride + q_off;
      const float* ot = out + t * q_stride + q_off;
      const float* gt = dout + t * q_stride + q_off;
      // The softmax row over keys 0..t.
      double max = -INFINITY, sum = 0, dt = 0;
      for (int64_t j = 0; j <= t; ++j) {
        const float* kj = k + j * kv_stride + kv_off;
        double dot = 0;
        for (int i = 0; i < d; ++i) dot += static_cast<double>(qt[i]) * kj[i];
        p[j] = dot * scale;
        max = std::max(max, p[j]);
      }
      for (int64_t j = 0; j <= t; ++j) sum += (p[j] = std::exp(p[j] - max));
      for (int64_t j = 0; j <= t; ++j) p[j] /= sum;
      for (int i = 0; i < d; ++i) dt += static_cast<double>(gt[i]) * ot[i];
      std::fill(acc.begin(), acc.end(), 0.0);  // dq_t
      for (int64_t j = 0; j <= t; ++j) {
        const float* kj = k + j * kv_stride + kv_off;
        const float* vj = v + j * kv_stride + kv_off;
        float* dkj = dk + j * kv_stride + kv_off;
        float* dvj = dv + j * kv_stride + kv_off;
        double dp = 0;
        for (int i = 0; i < d; ++i) dp += static_cast<double>(gt[i]) * vj[i];
        const double ds = p[j] * (dp - dt) * scale;
        for (int i = 0; i < d; ++i) {
          acc[i] += ds * kj[i];
          dkj[i] += static_cast<float>(ds * qt[i]);
          dvj[i] += static_cast<float>(p[j] * gt[i]);
        }
      }
      float* dqt = dq + t * q_stride + q_off;
      for (int i = 0; i < d; ++i) dqt[i] = static_cast<float>(acc[i]);
    }
  }
}

void MatMulBackward(const MatView& w, const float* x, const float* dy, int64_t m, float* dx,
                    float* dw, ThreadPool* pool) {
  CHECK(w.dtype == DType::kF32);
  const int64_t n = w.rows, k = w.cols;
  const StridedMat w_rows{reinterpret_cast<const float*>(w.data),
                          static_cast<int64_t>(w.row_bytes / sizeof(float)), 1};
  // dx [m, k] = dy [m, n] w [n, k]
  if (dx) Gemm(m, k, n, StridedMat{dy, n, 1}, w_rows, dx, k, false, pool);
  // dw [n, k] += dy^T [n, m] x [m, k]
  Gemm(n, k, m, StridedMat{dy, 1, n}, StridedMat{x, k, 1}, dw, k, true, pool);
}

}  // namespace herd::kernels
