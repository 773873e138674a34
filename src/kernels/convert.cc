#include "kernels/convert.h"

namespace herd::kernels {

float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {  // inf / NaN
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal: normalise the mantissa
    int shift = 0;
    while ((mant & 0x400u) == 0) mant <<= 1, ++shift;
    bits = sign | static_cast<uint32_t>(113 - shift) << 23 | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t F32ToF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;   // NaN (quiet)
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: inf
  const int exp = static_cast<int>(abs >> 23) - 127;
  if (exp >= -14) {  // normal f16: drop 13 mantissa bits, round to nearest even
    const uint32_t m = abs - (112u << 23);
    const uint32_t rounding = 0xfffu + ((m >> 13) & 1u);
    return sign | static_cast<uint16_t>((m + rounding) >> 13);
  }
  if (exp < -25) return sign;  // below half the smallest subnormal: zero
  // Subnormal f16: value = mant * 2^-24; shift the full 24-bit significand.
  const uint32_t full = (abs & 0x7fffffu) | 0x800000u;
  const uint32_t drop = static_cast<uint32_t>(-exp - 1);  // 14..24 bits
  uint32_t q = full >> drop;
  const uint32_t rem = full & ((1u << drop) - 1);
  const uint32_t half = 1u << (drop - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return sign | static_cast<uint16_t>(q);
}

}  // namespace herd::kernels
