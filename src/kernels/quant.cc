#include "kernels/quant.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "base/check.h"
#include "kernels/convert.h"
#include "kernels/kquant.h"

namespace herd::kernels {
namespace {

constexpr int kQK = 32;  // elements per block of every format here

uint16_t LoadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
void StoreU16(uint8_t* p, uint16_t v) { p[0] = v & 0xff, p[1] = v >> 8; }
uint32_t LoadU32(const uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
void StoreU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// ggml's level: truncation toward zero of v (already offset by +0.5 or +levels/2 + 0.5), capped at
// max_level. ggml writes MIN(max_level, (int8_t)v); for the v its quantisers produce (within
// about [0, max_level + 1.5)) this is the same value, and it stays defined for NaN or huge v
// (a degenerate block whose inverse scale overflowed), which map to 0 or max_level.
uint8_t Level(float v, int max_level) {
  if (!(v >= 1.0f)) return 0;  // also NaN
  if (v >= static_cast<float>(max_level)) return static_cast<uint8_t>(max_level);
  return static_cast<uint8_t>(v);
}

// The 5-bit q of element j (< 32) in a q5 block with nibbles at qs and high bits qh.
int Q5(const uint8_t* qs, uint32_t qh, int j) {
  const int nibble = j < 16 ? qs[j] & 0x0f : qs[j - 16] >> 4;
  return nibble | static_cast<int>(((qh >> j) & 1) << 4);
}

// The low 4 bits of 32 levels as 16 nibble bytes (element j low, j + 16 high nibble of byte j),
// and their fifth bits as the q5 formats' little-endian u32 (bit j: element j).
void PackNibbles(const uint8_t* q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = (q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4);
}
uint32_t HighBits(const uint8_t* q) {
  uint32_t qh = 0;
  for (int j = 0; j < kQK; ++j) qh |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
  return qh;
}

// The block's element of largest magnitude with its sign (the first one on ties), as ggml's
// q4_0 / q5_0 reference picks it; 0 for an all-zero block.
float SignedMax(const float* x) {
  float amax = 0, max = 0;
  for (int j = 0; j < kQK; ++j) {
    if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
  }
  return max;
}

// ggml's min / max scan for q4_1 / q5_1 (strict comparisons, starting from +-FLT_MAX).
void MinMax(const float* x, float* min, float* max) {
  *min = FLT_MAX, *max = -FLT_MAX;
  for (int j = 0; j < kQK; ++j) {
    if (x[j] < *min) *min = x[j];
    if (x[j] > *max) *max = x[j];
  }
}

void DequantQ8_0(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 34) {
    const float d = F16ToF32(LoadU16(src));
    const auto* q = reinterpret_cast<const int8_t*>(src + 2);
    for (int j = 0; j < kQK; ++j) *dst++ = d * q[j];
  }
}

void DequantQ4_0(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 18, dst += kQK) {
    const float d = F16ToF32(LoadU16(src));
    for (int j = 0; j < 16; ++j) {
      dst[j] = d * ((src[2 + j] & 0x0f) - 8);
      dst[j + 16] = d * ((src[2 + j] >> 4) - 8);
    }
  }
}

// In q4_1 / q5_1, d * q is exact in float32 (an 11-bit f16 significand times q < 32), so
// d * q + m has a single rounding whether or not the compiler fuses it into an FMA: the result
// is the same as ggml's and gguf-py's.
void DequantQ4_1(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 20, dst += kQK) {
    const float d = F16ToF32(LoadU16(src)), m = F16ToF32(LoadU16(src + 2));
    for (int j = 0; j < 16; ++j) {
      dst[j] = d * (src[4 + j] & 0x0f) + m;
      dst[j + 16] = d * (src[4 + j] >> 4) + m;
    }
  }
}

void DequantQ5_0(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 22, dst += kQK) {
    const float d = F16ToF32(LoadU16(src));
    const uint32_t qh = LoadU32(src + 2);
    for (int j = 0; j < kQK; ++j) dst[j] = d * (Q5(src + 6, qh, j) - 16);
  }
}

void DequantQ5_1(const uint8_t* src, int64_t n, float* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 24, dst += kQK) {
    const float d = F16ToF32(LoadU16(src)), m = F16ToF32(LoadU16(src + 2));
    const uint32_t qh = LoadU32(src + 4);
    for (int j = 0; j < kQK; ++j) dst[j] = d * Q5(src + 8, qh, j) + m;
  }
}

// q = round(x / d) with d = max|x| / 127.
void QuantQ8_0(const float* src, int64_t n, uint8_t* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 34) {
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(src[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1 / d : 0;
    StoreU16(dst, F32ToF16(d));
    for (int j = 0; j < kQK; ++j) dst[2 + j] = static_cast<uint8_t>(std::lround(src[j] * id));
  }
}

// The element of largest magnitude maps to -8 (keeping its sign in d), so the full 16 levels
// are used: d = max / -8, q = min(trunc(x / d + 8.5), 15).
void QuantQ4_0(const float* src, int64_t n, uint8_t* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 18) {
    const float d = SignedMax(src) / -8;
    const float id = d != 0 ? 1 / d : 0;
    StoreU16(dst, F32ToF16(d));
    uint8_t q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = Level(src[j] * id + 8.5f, 15);
    PackNibbles(q, dst + 2);
  }
}

// Affine: m = min, d = (max - min) / 15, q = min(trunc((x - min) / d + 0.5), 15), i.e. rounding
// half up. The levels use the float32 d and min; the stored ones are their f16 roundings.
void QuantQ4_1(const float* src, int64_t n, uint8_t* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 20) {
    float min, max;
    MinMax(src, &min, &max);
    const float d = (max - min) / 15;
    const float id = d != 0 ? 1 / d : 0;
    StoreU16(dst, F32ToF16(d));
    StoreU16(dst + 2, F32ToF16(min));
    uint8_t q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = Level((src[j] - min) * id + 0.5f, 15);
    PackNibbles(q, dst + 4);
  }
}

// q4_0 with 32 levels: d = max / -16, q = min(trunc(x / d + 16.5), 31).
void QuantQ5_0(const float* src, int64_t n, uint8_t* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 22) {
    const float d = SignedMax(src) / -16;
    const float id = d != 0 ? 1 / d : 0;
    StoreU16(dst, F32ToF16(d));
    uint8_t q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = Level(src[j] * id + 16.5f, 31);
    StoreU32(dst + 2, HighBits(q));
    PackNibbles(q, dst + 6);
  }
}

// q4_1 with 32 levels: d = (max - min) / 31, q = trunc((x - min) / d + 0.5). (ggml does not cap
// q here; it cannot exceed 31 for finite blocks.)
void QuantQ5_1(const float* src, int64_t n, uint8_t* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 24) {
    float min, max;
    MinMax(src, &min, &max);
    const float d = (max - min) / 31;
    const float id = d != 0 ? 1 / d : 0;
    StoreU16(dst, F32ToF16(d));
    StoreU16(dst + 2, F32ToF16(min));
    uint8_t q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = Level((src[j] - min) * id + 0.5f, 31);
    StoreU32(dst + 4, HighBits(q));
    PackNibbles(q, dst + 8);
  }
}

}  // namespace

bool CanDequantize(DType t) {
  switch (t) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return true;
    default:
      return false;
  }
}

bool CanQuantize(DType t) { return CanDequantize(t); }

void DequantizeRow(DType t, const uint8_t* src, int64_t n, float* dst) {
  switch (t) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(LoadU16(src + 2 * i));
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToF32(LoadU16(src + 2 * i));
      return;
    case DType::kQ8_0:
      return DequantQ8_0(src, n, dst);
    case DType::kQ4_0:
      return DequantQ4_0(src, n, dst);
    case DType::kQ4_1:
      return DequantQ4_1(src, n, dst);
    case DType::kQ5_0:
      return DequantQ5_0(src, n, dst);
    case DType::kQ5_1:
      return DequantQ5_1(src, n, dst);
    case DType::kQ4_K:
      return DequantizeRowQ4_K(src, n, dst);
    case DType::kQ5_K:
      return DequantizeRowQ5_K(src, n, dst);
    case DType::kQ6_K:
      return DequantizeRowQ6_K(src, n, dst);
    default:
      CHECK(false && "DequantizeRow: unsupported dtype");
  }
}

void QuantizeRow(DType t, const float* src, int64_t n, uint8_t* dst) {
  switch (t) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) StoreU16(dst + 2 * i, F32ToF16(src[i]));
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) StoreU16(dst + 2 * i, F32ToBF16(src[i]));
      return;
    case DType::kQ8_0:
      return QuantQ8_0(src, n, dst);
    case DType::kQ4_0:
      return QuantQ4_0(src, n, dst);
    case DType::kQ4_1:
      return QuantQ4_1(src, n, dst);
    case DType::kQ5_0:
      return QuantQ5_0(src, n, dst);
    case DType::kQ5_1:
      return QuantQ5_1(src, n, dst);
    case DType::kQ4_K:
      return QuantizeRowQ4_K(src, n, dst);
    case DType::kQ5_K:
      return QuantizeRowQ5_K(src, n, dst);
    case DType::kQ6_K:
      return QuantizeRowQ6_K(src, n, dst);
    default:
      CHECK(false && "QuantizeRow: unsupported dtype");
  }
}

}  // namespace herd::kernels
