// Dot products of one weight row (in its storage dtype) with one activation row, the inner loop of
// every matmul. As in llama.cpp's CPU backend, a block-quantised weight is multiplied by an
// activation row that was itself quantised once per matmul to an 8-bit block format, so the inner
// loop is an integer dot product per block:
//   weights q8_0 / q4_0 / q5_0  x  activations Q8_0 (32 elements: f16 d, int8 q[32]; 34 bytes)
//   weights q4_1 / q5_1         x  activations Q8_1 (32 elements: f16 d, 2 zero bytes, f32
//                                                    s = d * sum(q), int8 q[32]; 40 bytes; s
//                                                    carries the weight block's offset m:
//                                                    sum(m * d * q) = m * s)
//   weights q4_K / q5_K / q6_K  x  activations Q8_K (256 elements: f32 d, int8 q[256], int16
//                                                    bsums[16] = sum of q over each 16-element
//                                                    group; 292 bytes; bsums carry the q4_K /
//                                                    q5_K sub-block minimums and q6_K's level
//                                                    offset 32: sum(m * d * q) = m * d * bsum)
//   weights f32 / f16 / bf16    x  activations f32 (converted weight times float, FMA)
// Activation quantisation (both Q8 formats): amax = max |x| over the block, d = amax / 127,
// q = round-half-even(x * (127 / amax)) (0 when amax is 0), d stored as f16 — the rounding of
// llama.cpp's x86 SIMD quantiser, so herd reproduces the activations llama.cpp multiplies. ggml
// stores Q8_1's s as f16, which overflows to infinity once a block's sum passes 65504 (large
// activations do that); herd keeps s in f32, rounded through f16 whenever f16 can hold it, so it
// computes the same value as ggml where ggml's is finite and the right one where it is not.
// Q8_K is quantised as ggml's quantize_row_q8_K (the reference one, which ggml's x86 build runs):
// per 256-element block, take the first element of largest magnitude, max (with its sign), and the
// inverse scale iscale = -127 / max, so that max becomes level -127; q = round-half-even(iscale *
// x) (at most 127 in magnitude), and d = 1 / iscale in f32 (so d has the opposite sign of max). A
// block whose iscale is not finite (all zero, or max below 127 / FLT_MAX) is written as zeros. NaN
// elements never set max and quantise to -128 (as in Q8_0 / Q8_1 here; ggml leaves them undefined).
//
// Each (weight dtype, ISA) pair has a kernel; the scalar ones are the reference. Kernels of every
// level produce identical activation bytes and integer block sums; the float accumulation across
// blocks differs by rounding only (tests bound it). The AVX-512 kernels compute exactly what the
// AVX2 ones compute (same float steps in the same order; float weight rows: for lengths that are
// multiples of 8), so results are the same at both levels.
#pragma once

#include <cstdint>

#include "base/cpu.h"
#include "base/dtype.h"

namespace herd::kernels {

enum class ActFormat : uint8_t { kF32, kQ8_0, kQ8_1, kQ8_K };
inline constexpr int kNumActFormats = 4;

inline constexpr int kQ8Block = 32, kQ8KBlock = 256;
inline constexpr int kQ8_0Bytes = 34, kQ8_1Bytes = 40, kQ8_KBytes = 292;

// Q8_1's s: d * sum rounded through f16 when that is finite, else the float value.
float Q8_1Sum(float d, int sum);

// Bytes of an n-element activation row in format f (n a multiple of 32 for Q8_0 / Q8_1, of 256
// for Q8_K).
uint64_t ActRowBytes(ActFormat f, int64_t n);

// x[0..n) -> act (ActRowBytes(f, n) bytes).
using QuantizeActFn = void (*)(const float* x, int64_t n, uint8_t* act);
// sum over i < n of W[i] * A[i], for one weight row w and one activation row act.
using VecDotFn = float (*)(int64_t n, const uint8_t* w, const uint8_t* act);
// The same for 4 activation rows at once (act + c * act_stride, c < 4) into out[0..4).
using VecDot4Fn = void (*)(int64_t n, const uint8_t* w, const uint8_t* act, uint64_t act_stride,
                           float* out);

struct DotKernel {
  ActFormat act = ActFormat::kF32;
  QuantizeActFn quantize = nullptr;  // null for kF32: the float row is used as it is
  VecDotFn dot = nullptr;
  Isa isa = Isa::kScalar;  // the level the kernel was written for
  // Optional (null: call dot per row): 4 tokens per call, each result bit-identical to dot's. In
  // prefill it decodes each weight block once for 4 tokens instead of once per token.
  VecDot4Fn dot4 = nullptr;
};

// Whether weights of dtype t can be multiplied (every format herd dequantises).
bool HasDotKernel(DType t);
// The kernel for weights of dtype t at level isa, or the best lower level that has one.
DotKernel GetDotKernel(DType t, Isa isa);

// A kernel that multiplies float activations by the dequantised weight row, for every dtype
// (no activation quantisation: exact up to float32 sums, and slow). MatMul uses it instead of
// GetDotKernel when $HERD_FLOAT_ACTIVATIONS=1, which tests comparing herd with float64
// references of the dequantised weights set.
DotKernel GetFloatDotKernel(DType t);
bool FloatActivationsRequested();

// Per-ISA tables (qdot_scalar.cc, qdot_avx2.cc, qdot_avx512.cc); null entries mean "no kernel at
// this level".
namespace scalar {
DotKernel GetKernel(DType t);
}
namespace avx2 {
DotKernel GetKernel(DType t);
}
// AVX-512 F+BW+VL. Each kernel computes exactly (bit for bit) what the AVX2 kernel of its dtype
// computes, in fewer instructions, and every dtype has a 4-token kernel (q6_K too). The integer
// dots use VNNI (vpdpbusd / vpdpwssd) where the CPU has it, else vpmaddubsw + vpmaddwd (the same
// sums); GetKernel(t, vnni) picks the variant (tests run both; vnni = true needs a CPU with
// AVX512-VNNI).
namespace avx512 {
DotKernel GetKernel(DType t);
DotKernel GetKernel(DType t, bool vnni);
}  // namespace avx512

// How far ahead of its loads a 1-token kernel (AVX2 and AVX-512) prefetches its weight row, into
// the rows after it, which the same thread multiplies next. On the AVX-512 Xeon, 1B q8_0 decode
// read 16 GB/s of the machine's 31 without it; with 4 KiB, 24 GB/s (512 B: 18, 2 KiB: 23,
// 8-16 KiB: 24; docs/PERFORMANCE.md).
inline constexpr int kDecodePrefetchBytes = 4096;

}  // namespace herd::kernels
