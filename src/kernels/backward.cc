#include "kernels/backward.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/check.h"
#include "kernels/expsum.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"

namespace herd::kernels {

float RMSNormScale(const float* x, int64_t n, float eps) {
  double ss = 0;  // as RMSNorm: the mean of squares in double, the scale rounded to float once
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  return static_cast<float>(1.0 / std::sqrt(ss / n + eps));
}

void RMSNormBackward(const float* x, const float* weight, const float* dy, int64_t n, float r,
                     float* dx) {
  // sum_j dy_j w_j x_j in four interleaved partial sums (independent chains), added in order.
  double part[4] = {};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int j = 0; j < 4; ++j)
      part[j] += static_cast<double>(dy[i + j]) * weight[i + j] * x[i + j];
  }
  for (; i < n; ++i) part[0] += static_cast<double>(dy[i]) * weight[i] * x[i];
  const double dot = (part[0] + part[1]) + (part[2] + part[3]);
  const double rd = r;
  const double c = rd * rd * rd * dot / static_cast<double>(n);
  for (i = 0; i < n; ++i) dx[i] += static_cast<float>(rd * dy[i] * weight[i] - c * x[i]);
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
  constexpr int64_t kChunk = 1024;
  float e[kChunk];  // e^-gate, as SwiGLU computes it
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t len = std::min(kChunk, n - i0);
    ExpScaled(gate + i0, len, -1.0f, e);
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = i0 + j;
      const float z = gate[i];
      const float s = 1.0f / (1.0f + e[j]);
      const float silu = z * s;
      dup[i] = dy[i] * silu;
      dgate[i] = dy[i] * up[i] * s * (1.0f + z * (1.0f - s));
    }
  }
}

namespace {

// Rows [0, rows) of the softmax of query block [t0, t0 + rows) at positions start_pos + t0 + r
// over keys [0, n_keys): scores in p (written by the caller: q k^T), scaled and normalised in
// place over the visible keys [0, start_pos + t0 + r], zero beyond. The forward and the backward
// both call this, so the backward recomputes the forward's probabilities bit for bit.
void CausalSoftmaxRows(float* p, int64_t rows, int64_t n_keys, int64_t first_pos, float scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t visible = first_pos + r + 1;
    float* pr = p + r * n_keys;
    for (int64_t j = 0; j < visible; ++j) pr[j] *= scale;
    const float max = MaxOf(pr, visible);
    const float inv = static_cast<float>(1.0 / ExpShiftSum(pr, visible, max, pr));
    for (int64_t j = 0; j < visible; ++j) pr[j] *= inv;
    std::fill(pr + visible, pr + n_keys, 0.0f);
  }
}

constexpr int64_t kQueryBlock = 128;

}  // namespace

void CausalAttention(const float* q, const float* k, const float* v, int64_t kv_stride,
                     int64_t n_tokens, int64_t start_pos, const AttentionShape& s, int kv_head,
                     float* out) {
  CHECK(s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0);
  const int d = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const int64_t q_stride = int64_t{s.n_heads} * d, kv_off = int64_t{kv_head} * d;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  thread_local std::vector<float> p_buf;
  const StridedMat keys_t{k + kv_off, 1, kv_stride}, values{v + kv_off, kv_stride, 1};
  for (int g = 0; g < group; ++g) {
    const int64_t q_off = (int64_t{kv_head} * group + g) * d;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kQueryBlock) {
      const int64_t rows = std::min(kQueryBlock, n_tokens - t0), n_keys = start_pos + t0 + rows;
      p_buf.resize(rows * n_keys);
      float* p = p_buf.data();
      Gemm(rows, n_keys, d, StridedMat{q + t0 * q_stride + q_off, q_stride, 1}, keys_t, p, n_keys,
           false, nullptr);
      CausalSoftmaxRows(p, rows, n_keys, start_pos + t0, scale);
      Gemm(rows, d, n_keys, StridedMat{p, n_keys, 1}, values, out + t0 * q_stride + q_off, q_stride,
           false, nullptr);
    }
  }
}

void AttentionBackward(const float* q, const float* k, const float* v, const float* out,
                       const float* dout, int64_t n_tokens, const AttentionShape& s, int kv_head,
                       float* dq, float* dk, float* dv) {
  CHECK(s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0);
  const int d = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const int64_t q_stride = int64_t{s.n_heads} * d, kv_stride = int64_t{s.n_kv_heads} * d;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  const int64_t kv_off = int64_t{kv_head} * d;
  for (int64_t j = 0; j < n_tokens; ++j) {
    std::fill_n(dk + j * kv_stride + kv_off, d, 0.0f);
    std::fill_n(dv + j * kv_stride + kv_off, d, 0.0f);
  }
  // Blocks of queries as matrix products (kernels/gemm.h): block [t0, t1) needs keys [0, t1). P
  // and dS live in [rows, keys] buffers; dk and dv accumulate over blocks and heads in order.
  thread_local std::vector<float> p_buf, ds_buf;
  const StridedMat keys_t{k + kv_off, 1, kv_stride}, values_t{v + kv_off, 1, kv_stride};
  const StridedMat keys{k + kv_off, kv_stride, 1};
  for (int g = 0; g < group; ++g) {
    const int64_t q_off = (int64_t{kv_head} * group + g) * d;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kQueryBlock) {
      const int64_t rows = std::min(kQueryBlock, n_tokens - t0), n_keys = t0 + rows;
      p_buf.resize(rows * n_keys), ds_buf.resize(rows * n_keys);
      float* p = p_buf.data();
      float* ds = ds_buf.data();
      const StridedMat queries{q + t0 * q_stride + q_off, q_stride, 1};
      const StridedMat grads{dout + t0 * q_stride + q_off, q_stride, 1};
      Gemm(rows, n_keys, d, queries, keys_t, p, n_keys, false, nullptr);   // q k^T
      Gemm(rows, n_keys, d, grads, values_t, ds, n_keys, false, nullptr);  // dP = dout v^T
      CausalSoftmaxRows(p, rows, n_keys, t0, scale);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = t0 + r, visible = t + 1;
        const float* pr = p + r * n_keys;
        float* dsr = ds + r * n_keys;
        const float dt = Dot(dout + t * q_stride + q_off, out + t * q_stride + q_off, d);
        for (int64_t j = 0; j < visible; ++j) dsr[j] = pr[j] * (dsr[j] - dt) * scale;
        std::fill(dsr + visible, dsr + n_keys, 0.0f);
      }
      // dv += P^T dout, dq = dS k, dk += dS^T q (over this block's queries).
      Gemm(n_keys, d, rows, StridedMat{p, 1, n_keys}, grads, dv + kv_off, kv_stride, true, nullptr);
      Gemm(rows, d, n_keys, StridedMat{ds, n_keys, 1}, keys, dq + t0 * q_stride + q_off, q_stride,
           false, nullptr);
      Gemm(n_keys, d, rows, StridedMat{ds, 1, n_keys}, queries, dk + kv_off, kv_stride, true,
           nullptr);
    }
  }
}

void MatMulBackward(const MatView& w, const float* x, const float* dy, int64_t m, float* dx,
                    float* dw, ThreadPool* pool, bool accumulate_dx) {
  CHECK(w.dtype == DType::kF32);
  const int64_t n = w.rows, k = w.cols;
  const StridedMat w_rows{reinterpret_cast<const float*>(w.data),
                          static_cast<int64_t>(w.row_bytes / sizeof(float)), 1};
  // dx [m, k] = dy [m, n] w [n, k]
  if (dx) Gemm(m, k, n, StridedMat{dy, n, 1}, w_rows, dx, k, accumulate_dx, pool);
  // dw [n, k] += dy^T [n, m] x [m, k]
  Gemm(n, k, m, StridedMat{dy, 1, n}, StridedMat{x, k, 1}, dw, k, true, pool);
}

}  // namespace herd::kernels
