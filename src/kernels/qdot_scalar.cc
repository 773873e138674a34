// Scalar reference kernels for qdot.h: plain loops, one block at a time. The SIMD kernels are
// tested against these.
#include <cmath>
#include <cstring>

#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/qdot.h"
#include "kernels/qdot_kquant.h"

namespace herd::kernels::scalar {
namespace {

constexpr int kQK = kQ8Block;

uint16_t LoadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
void StoreU16(uint8_t* p, uint16_t v) { p[0] = v & 0xff, p[1] = v >> 8; }
uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);  // little-endian host (x86-64)
  return v;
}
float Half(const uint8_t* p) { return F16ToF32(LoadU16(p)); }

// x * id rounded half to even, as cvtps_epi32 after round-to-nearest does; values outside int32
// (only NaN here: |x * id| <= 127 otherwise) become INT32_MIN, which the int8 packing saturates
// to -128.
int8_t RoundToInt8(float v) {
  if (!(std::fabs(v) < 2147483648.0f)) return -128;
  const float r = std::nearbyint(v);
  return static_cast<int8_t>(r > 127 ? 127 : (r < -128 ? -128 : r));
}

// One 32-element block of x as Q8: writes q, returns d and the integer sum of q.
float QuantizeBlock(const float* x, int8_t* q, int* sum) {
  float amax = 0;
  for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = amax != 0 ? 127.0f / amax : 0.0f;
  *sum = 0;
  for (int j = 0; j < kQK; ++j) {
    q[j] = RoundToInt8(x[j] * id);
    *sum += q[j];
  }
  return d;
}

void QuantizeQ8_0(const float* x, int64_t n, uint8_t* act) {
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK, act += kQ8_0Bytes) {
    int sum;
    const float d = QuantizeBlock(x, reinterpret_cast<int8_t*>(act + 2), &sum);
    StoreU16(act, F32ToF16(d));
  }
}

void QuantizeQ8_1(const float* x, int64_t n, uint8_t* act) {
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK, act += kQ8_1Bytes) {
    int sum;
    const float d = QuantizeBlock(x, reinterpret_cast<int8_t*>(act + 8), &sum);
    StoreU16(act, F32ToF16(d));
    StoreU16(act + 2, 0);
    const float s = Q8_1Sum(d, sum);
    std::memcpy(act + 4, &s, 4);
  }
}

// The 32 integer levels of one weight block, in element order.
void LevelsQ8_0(const uint8_t* b, int* q) {
  for (int j = 0; j < kQK; ++j) q[j] = static_cast<int8_t>(b[2 + j]);
}
void Nibbles(const uint8_t* qs, int offset, int* q) {
  for (int j = 0; j < 16; ++j) q[j] = (qs[j] & 0x0f) - offset, q[j + 16] = (qs[j] >> 4) - offset;
}
void Fives(const uint8_t* qh_bytes, const uint8_t* qs, int offset, int* q) {
  const uint32_t qh = LoadU32(qh_bytes);
  Nibbles(qs, 0, q);
  for (int j = 0; j < kQK; ++j) q[j] = (q[j] | static_cast<int>(((qh >> j) & 1) << 4)) - offset;
}

int BlockSum(const int* q, const int8_t* a) {
  int s = 0;
  for (int j = 0; j < kQK; ++j) s += q[j] * a[j];
  return s;
}

// Weight formats with a scale only (x Q8_0 activations): sum of d_w * d_a * sum(q_w * q_a).
template <int kBytes, void (*Levels)(const uint8_t*, int*)>
float DotScaled(int64_t n, const uint8_t* w, const uint8_t* act) {
  float sum = 0;
  int q[kQK];
  for (int64_t b = 0; b < n / kQK; ++b, w += kBytes, act += kQ8_0Bytes) {
    Levels(w, q);
    const int s = BlockSum(q, reinterpret_cast<const int8_t*>(act + 2));
    sum += (Half(w) * Half(act)) * static_cast<float>(s);
  }
  return sum;
}

// Weight formats with a scale and a minimum (x Q8_1): adds m_w * s_a per block.
template <int kBytes, void (*Levels)(const uint8_t*, int*)>
float DotScaledMin(int64_t n, const uint8_t* w, const uint8_t* act) {
  float sum = 0;
  int q[kQK];
  for (int64_t b = 0; b < n / kQK; ++b, w += kBytes, act += kQ8_1Bytes) {
    Levels(w, q);
    const int s = BlockSum(q, reinterpret_cast<const int8_t*>(act + 8));
    float act_sum;
    std::memcpy(&act_sum, act + 4, 4);
    sum += (Half(w) * Half(act)) * static_cast<float>(s) + Half(w + 2) * act_sum;
  }
  return sum;
}

void LevelsQ4_0(const uint8_t* b, int* q) { Nibbles(b + 2, 8, q); }
void LevelsQ4_1(const uint8_t* b, int* q) { Nibbles(b + 4, 0, q); }
void LevelsQ5_0(const uint8_t* b, int* q) { Fives(b + 2, b + 6, 16, q); }
void LevelsQ5_1(const uint8_t* b, int* q) { Fives(b + 4, b + 8, 0, q); }

float DotF32(int64_t n, const uint8_t* w, const uint8_t* act) {
  return Dot(reinterpret_cast<const float*>(w), reinterpret_cast<const float*>(act), n);
}

// f16 / bf16 rows: converted in chunks, then the float dot.
template <float (*Convert)(uint16_t)>
float DotHalf(int64_t n, const uint8_t* w, const uint8_t* act) {
  const auto* x = reinterpret_cast<const float*>(act);
  float sum = 0;
  float row[256];
  for (int64_t i = 0; i < n; i += 256) {
    const int64_t m = n - i < 256 ? n - i : 256;
    for (int64_t j = 0; j < m; ++j) row[j] = Convert(LoadU16(w + 2 * (i + j)));
    sum += Dot(row, x + i, m);
  }
  return sum;
}

}  // namespace

DotKernel GetKernel(DType t) {
  const Isa s = Isa::kScalar;
  switch (t) {
    case DType::kF32:
      return {ActFormat::kF32, nullptr, DotF32, s};
    case DType::kF16:
      return {ActFormat::kF32, nullptr, DotHalf<F16ToF32>, s};
    case DType::kBF16:
      return {ActFormat::kF32, nullptr, DotHalf<BF16ToF32>, s};
    case DType::kQ8_0:
      return {ActFormat::kQ8_0, QuantizeQ8_0, DotScaled<34, LevelsQ8_0>, s};
    case DType::kQ4_0:
      return {ActFormat::kQ8_0, QuantizeQ8_0, DotScaled<18, LevelsQ4_0>, s};
    case DType::kQ5_0:
      return {ActFormat::kQ8_0, QuantizeQ8_0, DotScaled<22, LevelsQ5_0>, s};
    case DType::kQ4_1:
      return {ActFormat::kQ8_1, QuantizeQ8_1, DotScaledMin<20, LevelsQ4_1>, s};
    case DType::kQ5_1:
      return {ActFormat::kQ8_1, QuantizeQ8_1, DotScaledMin<24, LevelsQ5_1>, s};
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return GetKQuantKernel(t);  // qdot_kquant_*.cc
    default:
      return {};
  }
}

}  // namespace herd::kernels::scalar
