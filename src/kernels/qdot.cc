#include "kernels/qdot.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "base/check.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

namespace herd::kernels {

uint64_t ActRowBytes(ActFormat f, int64_t n) {
  switch (f) {
    case ActFormat::kF32:
      return static_cast<uint64_t>(n) * sizeof(float);
    case ActFormat::kQ8_0:
      CHECK(n % kQ8Block == 0);
      return static_cast<uint64_t>(n / kQ8Block) * kQ8_0Bytes;
    case ActFormat::kQ8_1:
      CHECK(n % kQ8Block == 0);
      return static_cast<uint64_t>(n / kQ8Block) * kQ8_1Bytes;
    case ActFormat::kQ8_K:
      CHECK(n % kQ8KBlock == 0);
      return static_cast<uint64_t>(n / kQ8KBlock) * kQ8_KBytes;
  }
  return 0;
}

float Q8_1Sum(float d, int sum) {
  const float s = d * static_cast<float>(sum);
  const float h = F16ToF32(F32ToF16(s));
  return std::isinf(h) && !std::isinf(s) ? s : h;
}

namespace {

template <DType kType>
float DotDequantised(int64_t n, const uint8_t* w, const uint8_t* act) {
  const auto* x = reinterpret_cast<const float*>(act);
  const int64_t chunk = 256;  // a multiple of every block size
  const uint64_t chunk_bytes = *BytesFor(kType, chunk);
  float row[chunk];
  float sum = 0;
  for (int64_t i = 0; i < n; i += chunk, w += chunk_bytes) {
    const int64_t m = n - i < chunk ? n - i : chunk;
    DequantizeRow(kType, w, m, row);
    sum += Dot(row, x + i, m);
  }
  return sum;
}

}  // namespace

DotKernel GetFloatDotKernel(DType t) {
  const ActFormat f = ActFormat::kF32;
  switch (t) {
    case DType::kQ8_0:
      return {f, nullptr, DotDequantised<DType::kQ8_0>, Isa::kScalar};
    case DType::kQ4_0:
      return {f, nullptr, DotDequantised<DType::kQ4_0>, Isa::kScalar};
    case DType::kQ4_1:
      return {f, nullptr, DotDequantised<DType::kQ4_1>, Isa::kScalar};
    case DType::kQ5_0:
      return {f, nullptr, DotDequantised<DType::kQ5_0>, Isa::kScalar};
    case DType::kQ5_1:
      return {f, nullptr, DotDequantised<DType::kQ5_1>, Isa::kScalar};
    case DType::kQ4_K:
      return {f, nullptr, DotDequantised<DType::kQ4_K>, Isa::kScalar};
    case DType::kQ5_K:
      return {f, nullptr, DotDequantised<DType::kQ5_K>, Isa::kScalar};
    case DType::kQ6_K:
      return {f, nullptr, DotDequantised<DType::kQ6_K>, Isa::kScalar};
    default:
      return scalar::GetKernel(t);  // f32 / f16 / bf16 take float activations anyway
  }
}

bool FloatActivationsRequested() {
  static const bool requested = [] {
    const char* env = std::getenv("HERD_FLOAT_ACTIVATIONS");
    return env && *env && std::strcmp(env, "0") != 0;
  }();
  return requested;
}

bool HasDotKernel(DType t) { return GetFloatDotKernel(t).dot != nullptr; }

DotKernel GetDotKernel(DType t, Isa isa) {
  if (isa >= Isa::kAvx512) {
    if (DotKernel k = avx512::GetKernel(t); k.dot) return k;
  }
  if (isa >= Isa::kAvx2) {
    if (DotKernel k = avx2::GetKernel(t); k.dot) return k;
  }
  if (DotKernel k = scalar::GetKernel(t); k.dot) return k;
  return GetFloatDotKernel(t);  // formats without an integer kernel (none today)
}

}  // namespace herd::kernels
