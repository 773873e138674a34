// The scalar reference kernels of qgemm.h: every element's integer sums and float steps written
// out plainly from the packed layout, which the SIMD kernels must reproduce bit for bit.
#include <cmath>
#include <cstring>

#include "kernels/convert.h"
#include "kernels/qdot.h"
#include "kernels/qgemm.h"

namespace herd::kernels {
namespace scalar {
namespace {

uint16_t Load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// q8_0 / q4_0: the integer value of element e (< 32) of row r in a packed block.
template <DType kType>
int Level(const uint8_t* wb, int r, int e) {
  if constexpr (kType == DType::kQ8_0) {
    return static_cast<int8_t>(wb[(e / 4) * 64 + r * 4 + e % 4] ^ 0x80);
  } else {
    const int j = e % 16;
    const uint8_t byte = wb[(j / 4) * 64 + r * 4 + j % 4];
    return (e < 16 ? byte & 15 : byte >> 4) - 8;
  }
}

template <DType kType>
void Blocks32(const uint8_t* group, const QActs& a, int64_t t0, int n, float* out, int64_t ldo) {
  const int64_t blocks = a.blocks;
  const uint64_t block_bytes = kType == DType::kQ8_0 ? 512 : 256;
  for (int i = 0; i < n; ++i) {
    const int64_t t = t0 + i;
    const uint8_t* row = a.q + t * a.row_bytes;
    for (int r = 0; r < kPackRows; ++r) {
      float acc = 0;
      for (int64_t b = 0; b < blocks; ++b) {
        const auto* q = reinterpret_cast<const int8_t*>(row + b * kQ8_0Bytes + 2);
        int isum = 0;
        const uint8_t* lines = Block32Lines(group, b, block_bytes);
        for (int e = 0; e < 32; ++e) isum += Level<kType>(lines, r, e) * q[e];
        const float dw = F16ToF32(Load16(Block32Scales(group, b, block_bytes) + r * 2));
        const float s = dw * a.scale[t * blocks + b];
        acc = std::fma(s, static_cast<float>(isum), acc);
      }
      out[i * ldo + r] = acc;
    }
  }
}

void Q4K(const uint8_t* group, const QActs& a, int64_t t0, int n, float* out, int64_t ldo) {
  for (int i = 0; i < n; ++i) {
    const int64_t t = t0 + i;
    const uint8_t* row = a.q + t * a.row_bytes;
    for (int r = 0; r < kPackRows; ++r) {
      float acc = 0;
      for (int64_t b = 0; b < a.blocks; ++b) {
        const uint8_t* o = group + b * kQ4KPackedBytes;
        const auto* q = reinterpret_cast<const int8_t*>(row + b * kQ8_KBytes + 4);
        int sumi = 0;
        for (int s = 0; s < 8; ++s) {
          int isum = 0;
          for (int e = 0; e < 32; ++e) {
            const uint8_t byte = o[320 + ((s / 2) * 8 + e / 4) * 64 + r * 4 + e % 4];
            isum += ((s & 1) ? byte >> 4 : byte & 15) * q[32 * s + e];
          }
          sumi += o[64 + s * 16 + r] * isum;
        }
        int summ = 0;
        for (int s = 0; s < 8; ++s) {
          int qsum = 0;
          for (int e = 0; e < 32; ++e) qsum += q[32 * s + e];
          summ += o[192 + (s / 2) * 32 + r * 2 + (s & 1)] * qsum;
        }
        const float da = a.scale[t * a.blocks + b];
        const float dd = F16ToF32(Load16(o + r * 2)) * da;
        const float dm = F16ToF32(Load16(o + 32 + r * 2)) * da;
        acc = std::fma(dd, static_cast<float>(sumi), acc);
        acc = std::fma(-dm, static_cast<float>(summ), acc);
      }
      out[i * ldo + r] = acc;
    }
  }
}

void Q6K(const uint8_t* group, const QActs& a, int64_t t0, int n, float* out, int64_t ldo) {
  for (int i = 0; i < n; ++i) {
    const int64_t t = t0 + i;
    const uint8_t* row = a.q + t * a.row_bytes;
    for (int r = 0; r < kPackRows; ++r) {
      float acc = 0;
      for (int64_t b = 0; b < a.blocks; ++b) {
        const uint8_t* o = group + b * kQ6KPackedBytes;
        const auto* q = reinterpret_cast<const int8_t*>(row + b * kQ8_KBytes + 4);
        int sumi = 0;
        for (int s = 0; s < 16; ++s) {
          const uint8_t* pair = o + 320 + (s / 2) * 384;
          int isum = 0;
          for (int e = 0; e < 16; ++e) {
            const int line = e / 4, k = e % 4;
            const uint8_t lo = pair[line * 64 + r * 4 + k];
            const uint8_t hi = pair[256 + (s & 1) * 64 + r * 4 + k];
            const int level = ((s & 1) ? lo >> 4 : lo & 15) | ((hi >> (2 * line)) & 3) << 4;
            isum += (level - 32) * q[16 * s + e];
          }
          sumi += static_cast<int8_t>(o[32 + s * 16 + r]) * isum;
        }
        const float dd = F16ToF32(Load16(o + r * 2)) * a.scale[t * a.blocks + b];
        acc = std::fma(dd, static_cast<float>(sumi), acc);
      }
      out[i * ldo + r] = acc;
    }
  }
}

}  // namespace

QGemmKernel GetQGemmKernel(DType t) {
  switch (t) {
    case DType::kQ8_0:
      return {Blocks32<DType::kQ8_0>, kMaxTileTokens};
    case DType::kQ4_0:
      return {Blocks32<DType::kQ4_0>, kMaxTileTokens};
    case DType::kQ4_K:
      return {Q4K, kMaxTileTokens};
    case DType::kQ6_K:
      return {Q6K, kMaxTileTokens};
    default:
      return {};
  }
}

}  // namespace scalar
}  // namespace herd::kernels
