// llama.cpp's CPU arithmetic, reproduced operation for operation: the kernels behind
// `--numerics ggml`, which make herd's logits the same bits as llama.cpp's (the pinned build of
// tools/gen_llamacpp_goldens.py: commit 0c1e570, x86-64 AVX2 + FMA + F16C code path, f16 KV cache,
// no flash attention) on q4_1 / q8_0 models such as the default SmolLM2 file.
//
// Why: greedy generation is chaotic with respect to rounding. llama.cpp quantises every matmul
// input to 8 bits, and a 1-ulp difference anywhere flips a few of those roundings, which then
// move the logits by ~1%: two implementations that differ only in summation order pick different
// tokens wherever the top-2 margin is small. Token-for-token agreement needs the same float
// operations in the same order. This file states them (each function's comment is the recipe,
// from reading ggml's sources; tools/llamacpp_dump checks every intermediate tensor against the
// real thing):
//   * f32 <-> f16 conversions round to nearest, ties to even (F16C);
//   * "hsum8" of 8 lanes a[0..7]: r_i = a_i + a_{i+4}; s0 = r0 + r2, s1 = r1 + r3; s0 + s1
//     (ggml's hsum_float_8 and llamafile's hsum);
//   * integer block sums are exact; lane k of a 32-element block holds elements 4k .. 4k + 3.
// The default numerics stay herd's own (faster, and as close to float64); this mode exists to
// prove the model code matches llama.cpp exactly, and for users who need llama.cpp's exact output.
#pragma once

#include <cstdint>

#include "base/dtype.h"
#include "base/thread_pool.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"

namespace herd::kernels::ggml {

// Weight dtypes MatMul reproduces (others: the caller refuses the model).
inline bool Supports(DType t) { return t == DType::kQ4_1 || t == DType::kQ8_0; }
// The functions below are compiled for AVX2 + FMA + F16C (the code path they reproduce, and so
// that std::fma is one instruction): call them only when BestIsa(DetectCpu()) >= Isa::kAvx2.

// ggml_rms_norm then ggml_mul: sum of float squares in double, mean rounded to float,
// scale = 1 / sqrtf(mean + eps), out = (x * scale) * w.
void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* out);

// ggml's rope cache for position pos: theta_scale = powf(base, -2 / n_dims), theta starts at pos
// and is multiplied by theta_scale after each pair (float); cos / sin are cosf / sinf of it.
void RopeTable(int64_t pos, int n_dims, float freq_base, float* cos, float* sin);
// Rotates adjacent pairs (ggml's normal mode, as GCC compiled it: a product, then a fused
// multiply-add): x0' = fma(x0, cos, -(x1 sin)), x1' = fma(x0, sin, x1 cos).
void Rope(float* x, int n_heads, int head_dim, const float* cos, const float* sin);

// out[t * w.rows + r] = row r of w . x_t for t < n. The input is quantised as ggml's AVX2
// quantize_row_q8_1 (q4_1 weights) / q8_0 (q8_0 weights) does: amax over the 32-element block,
// d = amax / 127 (stored f16), q = round-to-even(x * (127 / amax)), and for q8_1 s = f16(d * sum
// q). Then per row ggml_vec_dot_*: 8 float lanes, acc_k = fma(d_w * d_a, float(lane_k), acc_k) over
// the blocks in order, hsum8; q4_1 adds its min term summs = sum_b m_w * s_a (float, in block
// order) at the end. llamafile's q8_0 GEMM (prompt batches) has the same order.
void MatMul(const MatView& w, const float* x, int64_t n, float* out, ThreadPool* pool);

// ggml's attention without flash attention, per query head h (kv head h / group):
//   kq_j = K_j . f16(q) over head_dim, keys in f16: one 8-lane FMA accumulator in steps of 8 and
//          hsum8 when the call has >= 2 tokens (llamafile's f16 GEMM), else ggml_vec_dot_f16 (4
//          accumulators of 8 lanes over steps of 32, summed 0+2, 1+3, then 0+1, then the two
//          128-bit halves and two horizontal adds);
//   softmax of kq * scale over j <= pos: max, e_j = Exp(x - max), per 8 keys hsum8 added to a
//          double sum, p_j = e_j * float(1 / sum);
//   out_d = sum_j f16(p_j) V_jd, the same two orders as kq over the keys (zeros beyond pos).
// The cache must hold f16.
void Attention(const float* q, const KVRows& kv, int64_t n_tokens, int64_t start_pos,
               const AttentionShape& shape, float* out, ThreadPool* pool);

// ggml_swiglu: gate_i = silu(gate_i) * up_i with silu(x) = x / (1 + Exp(-x)).
void SwiGLU(float* gate, const float* up, int64_t n);

// ggml's AVX2 expf (ggml_v_expf, after ARM's optimized-routines): round x * log2(e) to n, b = x -
// n ln2 in two steps, a degree-5 polynomial in b, scaled by 2^n, with the special cases for |n| >
// 126. Agrees with expf to ~1.5 ulp; what matters here is that it is the same function.
float Exp(float x);

}  // namespace herd::kernels::ggml
