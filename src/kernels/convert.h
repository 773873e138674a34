// Scalar conversions between float32 and the 16-bit float formats weights are stored in.
// IEEE binary16 (f16): 1 sign, 5 exponent, 10 mantissa bits. bfloat16 (bf16): the top 16 bits of a
// float32. Float32 -> 16-bit rounds to nearest, ties to even, as torch and ggml do; NaN stays NaN.
#pragma once

#include <cstdint>
#include <cstring>

namespace herd::kernels {

inline float BF16ToF32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t F32ToBF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);  // ties to even
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);

}  // namespace herd::kernels
