// Scalar reference kernels for the K-quants (qdot_kquant.h): Q8_K activation quantisation and the
// integer dots of q4_K / q5_K / q6_K weight rows with it, one super-block (256 elements) at a time.
// Each super-block's integer sums are exact; the floats combine them as
//   q4_K / q5_K: (d_w * d_a) * sum_s(sc[s] * sum_i(q_w * q_a))
//                - (dmin_w * d_a) * sum_s(m[s] * (bsums[2s] + bsums[2s + 1]))
//   q6_K:        (d_w * d_a) * sum_j(scales[j] * sum_i((q_w - 32) * q_a))
// with one float sum over super-blocks. The AVX2 kernels are tested against these.
#include <cmath>
#include <cstring>

#include "kernels/convert.h"
#include "kernels/kquant.h"
#include "kernels/qdot_kquant.h"

namespace herd::kernels::scalar {
namespace {

constexpr int kQ4KBytes = 144, kQ5KBytes = 176, kQ6KBytes = 210;
// Offsets inside a Q8_K block.
constexpr int kQAt = 4, kBsumsAt = 4 + kQK_K;

float Half(const uint8_t* p) { return F16ToF32(static_cast<uint16_t>(p[0] | (p[1] << 8))); }
float LoadF32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
int Bsum(const uint8_t* blk, int g) {
  int16_t v;
  std::memcpy(&v, blk + kBsumsAt + 2 * g, 2);
  return v;
}

// Round half to even (the default rounding mode, as cvtps_epi32 does), saturated to int8; NaN
// (the only input outside int32 here, |v| <= 127 otherwise) becomes -128 as cvtps_epi32's
// INT32_MIN does after the saturating pack.
int8_t RoundToInt8(float v) {
  if (!(std::fabs(v) < 2147483648.0f)) return -128;
  const float r = std::nearbyint(v);
  return static_cast<int8_t>(r > 127 ? 127 : (r < -128 ? -128 : r));
}

// ggml's Q8_K quantisation (qdot.h): per block the first element of largest magnitude maps to
// level -127, d = 1 / (-127 / max).
void QuantizeQ8_K(const float* x, int64_t n, uint8_t* act) {
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K, act += kQ8_KBytes) {
    float amax = 0, max = 0;
    for (int j = 0; j < kQK_K; ++j) {
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
    }
    const float iscale = -127.0f / max;
    if (!std::isfinite(iscale)) {  // all zero (max = 0), or max so small that 127 / max overflows
      std::memset(act, 0, kQ8_KBytes);
      continue;
    }
    const float d = 1.0f / iscale;
    std::memcpy(act, &d, 4);
    auto* q = reinterpret_cast<int8_t*>(act + kQAt);
    for (int j = 0; j < kQK_K; ++j) q[j] = RoundToInt8(iscale * x[j]);
    for (int g = 0; g < kQK_K / 16; ++g) {
      int16_t sum = 0;
      for (int j = 0; j < 16; ++j) sum = static_cast<int16_t>(sum + q[16 * g + j]);
      std::memcpy(act + kBsumsAt + 2 * g, &sum, 2);
    }
  }
}

// The 6-bit scale and min of sub-block s (0..7) from q4_K / q5_K's 12 scale bytes (kquant.h).
void ScaleMin(const uint8_t* scales, int s, int* sc, int* mn) {
  if (s < 4) {
    *sc = scales[s] & 63, *mn = scales[s + 4] & 63;
  } else {
    *sc = (scales[s + 4] & 15) | (scales[s - 4] >> 6) << 4;
    *mn = (scales[s + 4] >> 4) | (scales[s] >> 6) << 4;
  }
}

// Level (0..15 / 0..31) of element i of sub-block s of a q4_K / q5_K block.
int LevelQ4_K(const uint8_t* blk, int s, int i) {
  return (blk[16 + 32 * (s / 2) + i] >> (4 * (s % 2))) & 15;
}
int LevelQ5_K(const uint8_t* blk, int s, int i) {
  const int low = (blk[48 + 32 * (s / 2) + i] >> (4 * (s % 2))) & 15;
  return low | ((blk[16 + i] >> s) & 1) << 4;
}

template <int kBytes, int (*Level)(const uint8_t*, int, int)>
float DotAffineK(int64_t n, const uint8_t* w, const uint8_t* act) {
  float sum = 0;
  for (int64_t b = 0; b < n / kQK_K; ++b, w += kBytes, act += kQ8_KBytes) {
    const auto* q8 = reinterpret_cast<const int8_t*>(act + kQAt);
    int dots = 0, mins = 0;
    for (int s = 0; s < 8; ++s) {
      int sc, mn;
      ScaleMin(w + 4, s, &sc, &mn);
      int dot = 0;
      for (int i = 0; i < 32; ++i) dot += Level(w, s, i) * q8[32 * s + i];
      dots += sc * dot;
      mins += mn * (Bsum(act, 2 * s) + Bsum(act, 2 * s + 1));
    }
    const float d_a = LoadF32(act);
    sum +=
        (Half(w) * d_a) * static_cast<float>(dots) - (Half(w + 2) * d_a) * static_cast<float>(mins);
  }
  return sum;
}

// The 256 signed levels (-32..31) of a q6_K block, in element order (kquant.h).
void LevelsQ6_K(const uint8_t* blk, int8_t* q) {
  for (int h = 0; h < 2; ++h) {
    const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
    for (int k = 0; k < 4; ++k) {
      for (int i = 0; i < 32; ++i) {
        const int low = (ql[32 * (k & 1) + i] >> (k < 2 ? 0 : 4)) & 15;
        const int high = (qh[i] >> (2 * k)) & 3;
        q[128 * h + 32 * k + i] = static_cast<int8_t>((low | high << 4) - 32);
      }
    }
  }
}

float DotQ6_K(int64_t n, const uint8_t* w, const uint8_t* act) {
  float sum = 0;
  int8_t q[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b, w += kQ6KBytes, act += kQ8_KBytes) {
    const auto* q8 = reinterpret_cast<const int8_t*>(act + kQAt);
    const auto* scales = reinterpret_cast<const int8_t*>(w + 192);
    LevelsQ6_K(w, q);
    int total = 0;
    for (int j = 0; j < 16; ++j) {
      int dot = 0;
      for (int e = 16 * j; e < 16 * (j + 1); ++e) dot += q[e] * q8[e];
      total += scales[j] * dot;
    }
    sum += (Half(w + 208) * LoadF32(act)) * static_cast<float>(total);
  }
  return sum;
}

}  // namespace

DotKernel GetKQuantKernel(DType t) {
  const Isa s = Isa::kScalar;
  switch (t) {
    case DType::kQ4_K:
      return {ActFormat::kQ8_K, QuantizeQ8_K, DotAffineK<kQ4KBytes, LevelQ4_K>, s};
    case DType::kQ5_K:
      return {ActFormat::kQ8_K, QuantizeQ8_K, DotAffineK<kQ5KBytes, LevelQ5_K>, s};
    case DType::kQ6_K:
      return {ActFormat::kQ8_K, QuantizeQ8_K, DotQ6_K, s};
    default:
      return {};
  }
}

}  // namespace herd::kernels::scalar
