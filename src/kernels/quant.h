// Row conversion between float32 and the storage dtypes of weights. GGUF block formats (ggml's
// layouts, all little-endian):
//   q8_0: 32 elements in 34 bytes = f16 scale d, int8 q[32];            x = d * q
//   q4_0: 32 elements in 18 bytes = f16 scale d, u8 nibbles[16];        x = d * (nibble - 8)
//         element j < 16 is the low nibble of byte j, element j + 16 its high nibble.
//   q4_1: 32 elements in 20 bytes = f16 d, f16 m, u8 nibbles[16];       x = d * nibble + m
//         (nibbles placed as in q4_0).
//   q5_0: 32 elements in 22 bytes = f16 d, u8 qh[4], u8 nibbles[16];    x = d * (q - 16)
//   q5_1: 32 elements in 24 bytes = f16 d, f16 m, u8 qh[4], u8 nibbles[16]; x = d * q + m
//         5-bit q of element j = its nibble (placed as in q4_0) | bit j of qh << 4, qh read as a
//         little-endian u32 (so element j's high bit is bit j % 8 of qh byte j / 8).
//   q4_k / q5_k / q6_k: 256-element super-blocks, see kernels/kquant.h.
// f32 / f16 / bf16 are plain little-endian arrays.
#pragma once

#include <cstdint>

#include "base/dtype.h"
#include "base/status.h"

namespace herd::kernels {

// Whether DequantizeRow / QuantizeRow handle the dtype.
bool CanDequantize(DType t);
bool CanQuantize(DType t);

// dst[0..n) = the n elements at src; n must be a multiple of the dtype's block size.
void DequantizeRow(DType t, const uint8_t* src, int64_t n, float* dst);
// The reverse: encodes n floats (multiple of the block size) into BytesFor(t, n) bytes at dst.
// Block formats use ggml's reference rounding, so files match what llama.cpp writes.
void QuantizeRow(DType t, const float* src, int64_t n, uint8_t* dst);

}  // namespace herd::kernels
