// Backward of the forward ops (ops.h, matmul.h, attention.h) for training, float32 in and out. Each
// takes what its forward saw and the gradient of the loss with respect to the forward's output (dy)
// and writes the gradients with respect to its inputs. Deterministic: no result depends on the
// thread count (every output element is summed by one thread in a fixed order).
#pragma once

#include <cstdint>

#include "base/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"

namespace herd::kernels {

// RMSNorm backward for `rows` rows of x, dy [rows, n], y = x * r * w with r[row] the scale
// RMSNorm (kernels/ops.h) returned for the row:
//   dx += r * (dy * w) - x * r^3 / n * sum_j dy_j w_j x_j
// (in double; added to dx, so that the residual stream's gradient collects it), and the rows'
// part of the weight's gradient, colsum[j] += sum over the rows in order of dy_j x_j r (double;
// the caller sums the blocks of rows in order). One fixed sequence of operations (fused
// multiply-adds; the dot over 8 interleaved partial sums and a fixed tree), so every ISA level
// computes the same bits.
void RMSNormBackwardRows(const float* x, const float* weight, const float* dy, const float* r,
                         int64_t rows, int64_t n, float* dx, double* colsum, Isa isa = ActiveIsa());
namespace avx512 {
void RMSNormBackwardRows(const float* x, const float* weight, const float* dy, const float* r,
                         int64_t rows, int64_t n, float* dx, double* colsum);
}  // namespace avx512

// The transpose of RopeInterleaved's rotation (rotation by -angle), in place on the gradient.
void RopeInterleavedBackward(float* dx, int n_heads, int head_dim, const float* cos,
                             const float* sin);

// out = silu(gate) * up: dgate = dy * up * silu'(gate), dup = dy * silu(gate), with
// silu'(z) = s(z) (1 + z (1 - s(z))) (one fused multiply-add), s the logistic function with
// SwiGLU's e^-z. The same bits at every ISA level.
void SwiGLUBackward(const float* gate, const float* up, const float* dy, int64_t n, float* dgate,
                    float* dup, Isa isa = ActiveIsa());

// Causal GQA attention forward for kv head `kv_head` and its query heads, as the backward below
// recomputes it (the same probabilities, bit for bit): queries t < n_tokens at positions
// start_pos + t (q, out: [n_tokens, n_heads * head_dim]) over keys and values at positions
// [0, start_pos + t] (k, v: position 0 first, kv_stride floats apart). Blocks of 128 queries as
// matrix products on the GEMM's micro-kernels (kernels/gemm.h), skipping the tiles the causal mask
// zeroes (the same bits at every ISA level). Training's forward uses it instead of the streaming
// inference kernel (kernels/attention.h), which handles one query at a time.
void CausalAttention(const float* q, const float* k, const float* v, int64_t kv_stride,
                     int64_t n_tokens, int64_t start_pos, const AttentionShape& s, int kv_head,
                     float* out, Isa isa = ActiveIsa());

// Causal GQA attention of one sequence from position 0 (what Attention computes with
// start_pos 0), backward for kv head `kv_head` and its query heads: writes those heads' columns of
// dq ([n_tokens, n_heads * head_dim]) and of dk, dv ([n_tokens, n_kv_heads * head_dim]).
// q, k, v: the forward's inputs (k after RoPE); out: its output; dout: the output's gradient.
// The softmax is recomputed in float (kernels/expsum.h), for blocks of 128 queries at a time as
// matrix products on the GEMM's micro-kernels (kernels/gemm.h), skipping the tiles the causal
// mask zeroes; with D_t = dout_t . out_t (= sum_j P_tj dP_tj):
//   dP_tj = dout_t . v_j,  dS_tj = P_tj (dP_tj - D_t),  dv_j = sum_t P_tj dout_t,
//   dq_t = scale * sum_j dS_tj k_j,  dk_j = scale * sum_t dS_tj q_t.
// Separate kv heads write disjoint columns, so callers run them in parallel.
void AttentionBackward(const float* q, const float* k, const float* v, const float* out,
                       const float* dout, int64_t n_tokens, const AttentionShape& s, int kv_head,
                       float* dq, float* dk, float* dv, Isa isa = ActiveIsa());

// MatMul backward for float32 weights w [n, k] applied to x [m, k] (y = x w^T, dy [m, n]):
//   dx = dy w      ([m, k]; written, or added to with accumulate_dx; skipped when dx is null)
//   dw += dy^T x   ([n, k]; added to, or written without accumulate_dw)
// Both products run through kernels/gemm.h (as the forward's float32 MatMul does), reading the
// operands in place through strides; every element is one FMA chain, whatever the thread count.
// Accumulating dx continues each element's FMA chain from its old value (the input gradient of
// several products of the same x, e.g. w1 and w3, without a separate sum).
void MatMulBackward(const MatView& w, const float* x, const float* dy, int64_t m, float* dx,
                    float* dw, ThreadPool* pool, bool accumulate_dx = false,
                    bool accumulate_dw = true);

}  // namespace herd::kernels
