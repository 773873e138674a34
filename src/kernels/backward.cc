#include "kernels/backward.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/aligned.h"
#include "base/check.h"
#include "base/grow.h"
#include "kernels/expsum.h"
#include "kernels/expsum_impl.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "kernels/rms_impl.h"

namespace herd::kernels {

void RMSNormBackwardRows(const float* x, const float* weight, const float* dy, const float* r,
                         int64_t rows, int64_t n, float* dx, double* colsum, Isa isa) {
  if (isa >= Isa::kAvx512)
    return avx512::RMSNormBackwardRows(x, weight, dy, r, rows, n, dx, colsum);
  for (int64_t row = 0; row < rows; ++row, x += n, dy += n, dx += n) {
    const double rd = r[row];
    double part[8] = {};  // element j into part[j mod 8]
    for (int64_t j = 0; j < n; ++j)
      part[j % 8] = std::fma(static_cast<double>(dy[j]) * weight[j], x[j], part[j % 8]);
    const double dot = rms_impl::Combine8(part);
    const double c = rd * rd * rd * dot / static_cast<double>(n);
    for (int64_t j = 0; j < n; ++j) {
      const double xj = x[j], dyj = dy[j];
      dx[j] += static_cast<float>(std::fma(-c, xj, rd * dyj * weight[j]));
      colsum[j] = std::fma(dyj * xj, rd, colsum[j]);
    }
  }
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
                    float* dup, Isa isa) {
  // kernels/expsum.h: the SIMD levels compute the scalar definition's bits.
  if (isa >= Isa::kAvx512) return avx512::SwiGLUBackward(gate, up, dy, n, dgate, dup);
  if (isa >= Isa::kAvx2) return avx2::SwiGLUBackward(gate, up, dy, n, dgate, dup);
  expsum_impl::SwiGLUBackward(gate, up, dy, 0, n, dgate, dup);
}

namespace {

// Training attention as tiles of the GEMM's micro-kernels (kernels/gemm.h), driven here so that
// tiles the causal mask zeroes are skipped: query row tiles of mr rows against key panels of nr
// keys up to the tile's last visible key. Every product element is one FMA chain over k in order,
// as Gemm computes it.

// Queries are taken in blocks of this many rows (bounds the [rows, keys] buffers).
constexpr int64_t kQueryBlock = 128;

// A row stride >= n for [rows, n] buffers whose rows the micro-kernels read in place.
int64_t InPlaceStride(int64_t n) { return GemmReadsRowsInPlace(n) ? n : n + 16; }

// B operands packed once per call into panels of nr columns (kernels/gemm.h GemmPackB): panel c
// at data + c * kc * nr holds B(p, c nr + j) at [p * nr + j] for p < kc.
struct Panels {
  AlignedFloats data;
  int64_t kc = 0;
  int nr = 0;
  const float* operator[](int64_t c) const { return data.data() + c * kc * nr; }
};

// B = b (kc x n) in panels.
void PackPanels(const GemmMicroKernel& kr, const StridedMat& b, int64_t kc, int64_t n,
                Panels* out) {
  const int nr = kr.nr;
  const int64_t panels = (n + nr - 1) / nr;
  out->kc = kc, out->nr = nr;
  Grow(out->data, panels * kc * nr);
  for (int64_t c = 0; c < panels; ++c) {
    GemmPackB(kr, b, 0, kc, c * nr, static_cast<int>(std::min<int64_t>(nr, n - c * nr)),
              out->data.data() + c * kc * nr);
  }
}

// An A operand of `rows` rows from row i0 of a row-major matrix (stride ld), k = [0, kc): the rows
// themselves when the micro-kernel reads them in place, else a packed copy in buf.
struct RowsA {
  const float* ptr;
  int64_t lda;
};
RowsA RowsOf(const GemmMicroKernel& kr, const float* a, int64_t ld, int64_t i0, int rows,
             int64_t kc, AlignedFloats* buf) {
  if (GemmReadsRowsInPlace(ld)) return {a + i0 * ld, ld};
  Grow(*buf, int64_t{kr.mr} * kc);
  GemmPackA(kr, StridedMat{a, ld, 1}, i0, rows, 0, kc, buf->data());
  return {buf->data(), 0};
}

// C [rows, n] (stride ldc) = A [rows, k] B [k, n] for the causal part: for each row tile
// [i, i + mr), the columns [0, min(n, col_limit(i + mr))) in whole panels (k = kc), or, with
// k_limit, C [rows, d] = A B over k = [0, min(kc, k_limit(i + mr))) for all n columns. One of the
// two limits is the causal one; the other is the full extent.
template <typename ColLimit, typename KLimit>
void CausalProduct(const GemmMicroKernel& kr, int64_t rows, int64_t n, int64_t kc, const float* a,
                   int64_t lda, const Panels& b, float* c, int64_t ldc, bool load,
                   const ColLimit& col_limit, const KLimit& k_limit, AlignedFloats* buf) {
  const int mr = kr.mr, nr = kr.nr;
  for (int64_t i = 0; i < rows; i += mr) {
    const int r = static_cast<int>(std::min<int64_t>(mr, rows - i));
    const int64_t cols = std::min(n, col_limit(i + r)), k = std::min(kc, k_limit(i + r));
    if (k <= 0 && !load) {
      for (int t = 0; t < r; ++t) std::fill_n(c + (i + t) * ldc, cols, 0.0f);
      continue;
    }
    const RowsA ap = RowsOf(kr, a, lda, i, r, k, buf);
    for (int64_t j = 0; j < cols; j += nr) {
      GemmTile(kr, r, static_cast<int>(std::min<int64_t>(nr, cols - j)), k, ap.ptr, ap.lda,
               b[j / nr], c + i * ldc + j, ldc, load);
    }
  }
}

// Rows [0, rows) of the softmax of the query block [t0, t0 + rows) at positions first_pos + r
// (first_pos = start_pos + t0) over keys [0, n_keys): p [rows, n_keys] (stride ldp) = q k^T for
// the visible keys [0, first_pos + r] (keys_t: k^T in panels), then scaled, normalised in place,
// zero beyond. The forward and the backward both call this, so the backward recomputes the
// forward's probabilities bit for bit.
void CausalProbabilities(const GemmMicroKernel& kr, const float* q, int64_t q_stride, int d,
                         const Panels& keys_t, int64_t rows, int64_t n_keys, int64_t first_pos,
                         float scale, float* p, int64_t ldp, Isa isa, AlignedFloats* buf) {
  CausalProduct(
      kr, rows, n_keys, d, q, q_stride, keys_t, p, ldp, false,
      [&](int64_t end) { return first_pos + end; }, [&](int64_t) { return int64_t{d}; }, buf);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t visible = first_pos + r + 1;
    float* pr = p + r * ldp;
    for (int64_t j = 0; j < visible; ++j) pr[j] *= scale;
    const float max = MaxOf(pr, visible, isa);
    const float inv = static_cast<float>(1.0 / ExpShiftSum(pr, visible, max, pr, isa));
    for (int64_t j = 0; j < visible; ++j) pr[j] *= inv;
    std::fill(pr + visible, pr + n_keys, 0.0f);
  }
}

// dst [n, d] (stride ld, accumulated) += src^T [n, rows] y [rows, d] over the causal part: key
// row tile [i, i + mr) of dst sums over the block's queries from the first that sees key i
// (query t sees keys <= first_pos + t), in order. src: [rows, n_keys] (stride lds); y: panels.
void CausalTransposedProduct(const GemmMicroKernel& kr, const float* src, int64_t lds, int64_t rows,
                             int64_t n_keys, int64_t first_pos, const Panels& y, int d, float* dst,
                             int64_t ld, AlignedFloats* buf) {
  const int mr = kr.mr, nr = kr.nr;
  Grow(*buf, int64_t{mr} * rows);
  for (int64_t i = 0; i < n_keys; i += mr) {
    const int r = static_cast<int>(std::min<int64_t>(mr, n_keys - i));
    const int64_t first = std::max<int64_t>(0, i - first_pos);  // earlier queries see none of them
    if (first >= rows) continue;
    GemmPackA(kr, StridedMat{src, 1, lds}, i, r, first, rows - first, buf->data());
    for (int64_t j = 0; j < d; j += nr) {
      GemmTile(kr, r, static_cast<int>(std::min<int64_t>(nr, d - j)), rows - first, buf->data(), 0,
               y[j / nr] + first * nr, dst + i * ld + j, ld, true);
    }
  }
}

}  // namespace

void CausalAttention(const float* q, const float* k, const float* v, int64_t kv_stride,
                     int64_t n_tokens, int64_t start_pos, const AttentionShape& s, int kv_head,
                     float* out, Isa isa) {
  CHECK(s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0);
  const int d = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const int64_t q_stride = int64_t{s.n_heads} * d, kv_off = int64_t{kv_head} * d;
  const int64_t n_keys_all = start_pos + n_tokens;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  const GemmMicroKernel kr = GemmKernelFor(isa);
  thread_local Panels keys_t, values;
  thread_local AlignedFloats p_buf, a_buf;
  PackPanels(kr, StridedMat{k + kv_off, 1, kv_stride}, d, n_keys_all, &keys_t);  // k^T [d, keys]
  PackPanels(kr, StridedMat{v + kv_off, kv_stride, 1}, n_keys_all, d, &values);  // v [keys, d]
  for (int g = 0; g < group; ++g) {
    const int64_t q_off = (int64_t{kv_head} * group + g) * d;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kQueryBlock) {
      const int64_t rows = std::min(kQueryBlock, n_tokens - t0), n_keys = start_pos + t0 + rows;
      const int64_t ldp = InPlaceStride(n_keys);
      Grow(p_buf, rows * ldp);
      CausalProbabilities(kr, q + t0 * q_stride + q_off, q_stride, d, keys_t, rows, n_keys,
                          start_pos + t0, scale, p_buf.data(), ldp, isa, &a_buf);
      // out = P v over each row tile's visible keys.
      CausalProduct(
          kr, rows, d, n_keys, p_buf.data(), ldp, values, out + t0 * q_stride + q_off, q_stride,
          false, [&](int64_t) { return int64_t{d}; },
          [&](int64_t end) { return start_pos + t0 + end; }, &a_buf);
    }
  }
}

void AttentionBackward(const float* q, const float* k, const float* v, const float* out,
                       const float* dout, int64_t n_tokens, const AttentionShape& s, int kv_head,
                       float* dq, float* dk, float* dv, Isa isa) {
  CHECK(s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0);
  const int d = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const int64_t q_stride = int64_t{s.n_heads} * d, kv_stride = int64_t{s.n_kv_heads} * d;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  const int64_t kv_off = int64_t{kv_head} * d;
  for (int64_t j = 0; j < n_tokens; ++j) {
    std::fill_n(dk + j * kv_stride + kv_off, d, 0.0f);
    std::fill_n(dv + j * kv_stride + kv_off, d, 0.0f);
  }
  const GemmMicroKernel kr = GemmKernelFor(isa);
  // k^T and v^T [d, keys] for q k^T and dout v^T; k [keys, d] for dS k.
  thread_local Panels keys_t, values_t, keys, block_q, block_dout;
  thread_local AlignedFloats p_buf, ds_buf, a_buf;
  PackPanels(kr, StridedMat{k + kv_off, 1, kv_stride}, d, n_tokens, &keys_t);
  PackPanels(kr, StridedMat{v + kv_off, 1, kv_stride}, d, n_tokens, &values_t);
  PackPanels(kr, StridedMat{k + kv_off, kv_stride, 1}, n_tokens, d, &keys);
  // Blocks of queries: block [t0, t1) needs keys [0, t1). P and dS live in [rows, keys] buffers;
  // dk and dv accumulate over blocks and heads in order.
  for (int g = 0; g < group; ++g) {
    const int64_t q_off = (int64_t{kv_head} * group + g) * d;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kQueryBlock) {
      const int64_t rows = std::min(kQueryBlock, n_tokens - t0), n_keys = t0 + rows;
      const int64_t ldp = InPlaceStride(n_keys);
      Grow(p_buf, rows * ldp), Grow(ds_buf, rows * ldp);
      float* p = p_buf.data();
      float* ds = ds_buf.data();
      const float* queries = q + t0 * q_stride + q_off;
      const float* grads = dout + t0 * q_stride + q_off;
      CausalProbabilities(kr, queries, q_stride, d, keys_t, rows, n_keys, t0, scale, p, ldp, isa,
                          &a_buf);
      // dP = dout v^T over the visible keys, then dS = P (dP - D) scale in place.
      CausalProduct(
          kr, rows, n_keys, d, grads, q_stride, values_t, ds, ldp, false,
          [&](int64_t end) { return t0 + end; }, [&](int64_t) { return int64_t{d}; }, &a_buf);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = t0 + r, visible = t + 1;
        const float* pr = p + r * ldp;
        float* dsr = ds + r * ldp;
        const float dt = Dot(dout + t * q_stride + q_off, out + t * q_stride + q_off, d);
        for (int64_t j = 0; j < visible; ++j) dsr[j] = pr[j] * (dsr[j] - dt) * scale;
        std::fill(dsr + visible, dsr + n_keys, 0.0f);
      }
      // dv += P^T dout, dk += dS^T q (over this block's queries), dq = dS k.
      PackPanels(kr, StridedMat{grads, q_stride, 1}, rows, d, &block_dout);
      PackPanels(kr, StridedMat{queries, q_stride, 1}, rows, d, &block_q);
      CausalTransposedProduct(kr, p, ldp, rows, n_keys, t0, block_dout, d, dv + kv_off, kv_stride,
                              &a_buf);
      CausalTransposedProduct(kr, ds, ldp, rows, n_keys, t0, block_q, d, dk + kv_off, kv_stride,
                              &a_buf);
      CausalProduct(
          kr, rows, d, n_keys, ds, ldp, keys, dq + t0 * q_stride + q_off, q_stride, false,
          [&](int64_t) { return int64_t{d}; }, [&](int64_t end) { return t0 + end; }, &a_buf);
    }
  }
}

void MatMulBackward(const MatView& w, const float* x, const float* dy, int64_t m, float* dx,
                    float* dw, ThreadPool* pool, bool accumulate_dx, bool accumulate_dw) {
  CHECK(w.dtype == DType::kF32);
  const int64_t n = w.rows, k = w.cols;
  const StridedMat w_rows{reinterpret_cast<const float*>(w.data),
                          static_cast<int64_t>(w.row_bytes / sizeof(float)), 1};
  // dx [m, k] = dy [m, n] w [n, k]
  if (dx) Gemm(m, k, n, StridedMat{dy, n, 1}, w_rows, dx, k, accumulate_dx, pool);
  // dw [n, k] += dy^T [n, m] x [m, k]
  Gemm(n, k, m, StridedMat{dy, 1, n}, StridedMat{x, k, 1}, dw, k, accumulate_dw, pool);
}

}  // namespace herd::kernels
