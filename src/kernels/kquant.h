// The GGUF K-quant block formats q4_K, q5_K and q6_K (ggml's layouts, all little-endian). Each
// block ("super-block") holds 256 elements, split into sub-blocks with their own small integer
// scales, which in turn are scaled by the block's f16 super-scales.
//
//   q4_K: 144 bytes = f16 d, f16 dmin, u8 scales[12], u8 qs[128].
//         8 sub-blocks of 32; sub-block s has a 6-bit scale sc[s] and a 6-bit min m[s]:
//           x = (d * sc[s]) * q - (dmin * m[s]),  q in [0, 15].
//         scales[12] packs the 16 six-bit values: for s < 4, sc[s] = scales[s] & 63 and
//         m[s] = scales[s + 4] & 63; for s >= 4, sc[s] = (scales[s + 4] & 15) | (scales[s - 4] >>
//         6)
//         << 4 and m[s] = (scales[s + 4] >> 4) | (scales[s] >> 6) << 4.
//         qs: 4 groups of 32 bytes; byte i of group g holds sub-block 2g's element i in its low
//         nibble and sub-block 2g + 1's element i in its high nibble.
//   q5_K: 176 bytes = f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128].
//         As q4_K with q in [0, 31]: the low 4 bits of q are placed as in q4_K, and the fifth bit
//         of sub-block s's element i is bit s of qh[i].
//   q6_K: 210 bytes = u8 ql[128], u8 qh[64], i8 scales[16], f16 d.
//         16 sub-blocks of 16 with signed 8-bit scales: x = (d * scales[i / 16]) * (q - 32),
//         q in [0, 63]. Each half h (elements 128h .. 128h + 127) uses ql[64h .. 64h + 63] and
//         qh[32h .. 32h + 31]; its element 32k + i (k < 4, i < 32) has low 4 bits in ql[64h + i +
//         32 (k & 1)] (low nibble for k < 2, high nibble for k >= 2) and high 2 bits at bits 2k,
//         2k + 1 of qh[32h + i].
//
// Dequantisation is exact: d * sc and then that times q are exact in float32 (an f16 significand
// times small integers), so each value has at most one rounding (q4_K / q5_K's subtraction), the
// same whatever the evaluation order or FMA use; gguf-py and ggml compute the same floats.
//
// Quantisation follows ggml's reference algorithm (quantize_row_q*_K_ref, which llama-quantize
// uses when given no importance matrix), reimplemented; it writes the same bytes as ggml
// (tests/kquant_test.cc checks this against llama.cpp 0c1e570) wherever ggml's f16 super-scales
// stay finite:
//   q4_K / q5_K: each 32-element sub-block gets a weighted least-squares affine fit (weights
//     sqrt(mean(x^2)) + |x|): a grid of candidate inverse scales around levels / (max - min) is
//     tried, each assignment of levels re-solved for the best scale and min (min clamped so that
//     the sub-block's min term is <= 0, i.e. the levels cover zero), keeping the fit of least
//     weighted squared error. The 8 scales and 8 mins are then quantised to 6 bits against
//     d = max scale / 63, dmin = max min / 63, and the levels recomputed against those.
//   q6_K: each 16-element sub-block gets a symmetric fit (the element of largest magnitude maps
//     near level -32; 19 candidate inverse scales, weights x^2, best by weighted least squares);
//     the 16 scales are quantised to int8 against d = -(scale of largest magnitude) / 128, and
//     the levels recomputed against d * scales[s].
// Defined behaviour on bad input: NaN and +-Inf elements are quantised as if they were 0; the f16
// super-scales saturate at +-65504 instead of overflowing, so any block QuantizeRow writes
// dequantises to finite values. Blocks whose f16 super-scales round to 0 (tiny values; q6_K:
// largest sub-block scale below 1e-15, written as all zero bytes) decode to zeros.
#pragma once

#include <cstdint>

namespace herd::kernels {

constexpr int kQK_K = 256;  // elements per K-quant block

// dst[0..n) = the n elements at src; n must be a multiple of kQK_K (CHECKed).
void DequantizeRowQ4_K(const uint8_t* src, int64_t n, float* dst);
void DequantizeRowQ5_K(const uint8_t* src, int64_t n, float* dst);
void DequantizeRowQ6_K(const uint8_t* src, int64_t n, float* dst);

// Encodes n floats (a multiple of kQK_K, CHECKed) into n / 256 blocks at dst.
void QuantizeRowQ4_K(const float* src, int64_t n, uint8_t* dst);
void QuantizeRowQ5_K(const float* src, int64_t n, uint8_t* dst);
void QuantizeRowQ6_K(const float* src, int64_t n, uint8_t* dst);

}  // namespace herd::kernels
