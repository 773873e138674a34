#include "kernels/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/check.h"
#include "kernels/convert.h"

namespace herd::kernels {
namespace {

constexpr int kQK = 32;  // elements per q8_0 / q4_0 block

uint16_t LoadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
void StoreU16(uint8_t* p, uint16_t v) { p[0] = v & 0xff, p[1] = v >> 8; }

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
// are used: d = max / -8, q = clamp(trunc(x / d + 8.5), 0, 15).
void QuantQ4_0(const float* src, int64_t n, uint8_t* dst) {
  for (int64_t b = 0; b < n / kQK; ++b, src += kQK, dst += 18) {
    float amax = 0, max = 0;
    for (int j = 0; j < kQK; ++j) {
      if (std::fabs(src[j]) > amax) amax = std::fabs(src[j]), max = src[j];
    }
    const float d = max / -8;
    const float id = d != 0 ? 1 / d : 0;
    StoreU16(dst, F32ToF16(d));
    auto level = [&](float x) {
      return static_cast<uint8_t>(
          std::min(15, static_cast<int>(static_cast<int8_t>(x * id + 8.5f))));
    };
    for (int j = 0; j < 16; ++j) dst[2 + j] = level(src[j]) | (level(src[j + 16]) << 4);
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
    default:
      CHECK(false && "QuantizeRow: unsupported dtype");
  }
}

}  // namespace herd::kernels
