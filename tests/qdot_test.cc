// Dot kernels (kernels/qdot.h) at every ISA level this CPU has, against float64 math written out
// here: activation quantisation (bytes identical across levels, rounding as specified), each
// weight dtype's dot product, and MatMul / MatMulShared built on them. The AVX-512 kernels (both
// the VNNI and the non-VNNI variant) are also checked against AVX2's bit for bit, on random bytes.
#include "kernels/qdot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/convert.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "kernels_test_util.h"

namespace herd::kernels {
namespace {

constexpr DType kAll[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0,
                          DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                          DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

// The K-quants: rows are whole 256-element super-blocks, activations Q8_K.
bool IsK(DType t) { return t == DType::kQ4_K || t == DType::kQ5_K || t == DType::kQ6_K; }

using testing::Levels;

// Gaussian values; every 7th block of 32 scaled by 1e4 and every 11th set to zero, so blocks of
// very different scales and all-zero blocks occur.
std::vector<float> Values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t block = i / 32;
    v[i] = block % 11 == 3 ? 0.0f : dist(rng) * (block % 7 == 5 ? 1e4f : 1.0f);
  }
  return v;
}

std::vector<uint8_t> Encode(DType t, const std::vector<float>& x, int64_t rows, int64_t cols) {
  const uint64_t row_bytes = *BytesFor(t, cols);
  std::vector<uint8_t> out(row_bytes * rows);
  for (int64_t r = 0; r < rows; ++r) QuantizeRow(t, &x[r * cols], cols, &out[r * row_bytes]);
  return out;
}

float Half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

float F32At(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

// The activation row as the kernel sees it: floats, or d * q per Q8 block.
std::vector<double> DecodeAct(ActFormat f, const uint8_t* act, int64_t n) {
  std::vector<double> a(n);
  if (f == ActFormat::kF32) {
    for (int64_t i = 0; i < n; ++i) a[i] = reinterpret_cast<const float*>(act)[i];
    return a;
  }
  if (f == ActFormat::kQ8_K) {  // f32 d, int8 q[256], int16 bsums[16]
    for (int64_t b = 0; b < n / 256; ++b, act += kQ8_KBytes) {
      for (int j = 0; j < 256; ++j)
        a[b * 256 + j] = double{F32At(act)} * static_cast<int8_t>(act[4 + j]);
    }
    return a;
  }
  const int bytes = f == ActFormat::kQ8_0 ? kQ8_0Bytes : kQ8_1Bytes;
  const int q_at = f == ActFormat::kQ8_0 ? 2 : 8;
  for (int64_t b = 0; b < n / 32; ++b, act += bytes) {
    for (int j = 0; j < 32; ++j)
      a[b * 32 + j] = double{Half(act)} * static_cast<int8_t>(act[q_at + j]);
  }
  return a;
}

// The part of K-quant weight element e (0..255 of the super-block blk) that the kernels compute
// apart from the scaled level and subtract in float (q4_K / q5_K: the sub-block minimum dmin *
// m) or keep inside their int32 lane sums (q6_K: the level offset, d * scale * 32), per kquant.h.
// Float rounding in the kernels is relative to these terms too, which may cancel in W itself.
double KOffset(DType t, const uint8_t* blk, int e) {
  if (t == DType::kQ6_K)
    return std::fabs(Half(blk + 208) * static_cast<int8_t>(blk[192 + e / 16]) * 32.0);
  const uint8_t* scales = blk + 4;
  const int s = e / 32;
  const int m = s < 4 ? scales[s + 4] & 63 : (scales[s + 4] >> 4) | (scales[s] >> 6) << 4;
  return std::fabs(double{Half(blk + 2)} * m);
}

// float64 of what the kernel defines: sum of W[i] * A[i] over the dequantised weight row, except
// that a q4_1 / q5_1 block's minimum m multiplies the activation block's stored s (f16 of
// d * sum q) rather than the exact sum. Also returns sum |W[i] * A[i]| (plus the K-quants'
// offset terms) for the error bound.
double Reference(DType t, const uint8_t* w, ActFormat f, const uint8_t* act, int64_t n,
                 double* magnitude) {
  std::vector<float> wf(n);
  DequantizeRow(t, w, n, wf.data());
  const std::vector<double> a = DecodeAct(f, act, n);
  double sum = 0;
  *magnitude = 0;
  for (int64_t i = 0; i < n; ++i) sum += wf[i] * a[i], *magnitude += std::fabs(wf[i] * a[i]);
  if (IsK(t)) {
    const int w_bytes = Info(t).block_bytes;
    for (int64_t i = 0; i < n; ++i)
      *magnitude += KOffset(t, w + i / 256 * w_bytes, static_cast<int>(i % 256)) * std::fabs(a[i]);
  }
  if (f == ActFormat::kQ8_1) {
    const int w_bytes = Info(t).block_bytes;
    for (int64_t b = 0; b < n / 32; ++b) {
      const double m = Half(w + b * w_bytes + 2);
      double exact = 0;
      for (int j = 0; j < 32; ++j) exact += a[b * 32 + j];
      float s;
      std::memcpy(&s, act + b * kQ8_1Bytes + 4, 4);
      sum += m * (s - exact);
      *magnitude += std::fabs(m * s);
    }
  }
  return sum;
}

TEST(QDot, EveryDtypeHasAKernelAtEveryLevel) {
  for (DType t : kAll) {
    EXPECT_TRUE(HasDotKernel(t)) << Name(t);
    for (Isa isa : Levels()) {
      const DotKernel k = GetDotKernel(t, isa);
      ASSERT_NE(k.dot, nullptr) << Name(t);
      EXPECT_EQ(k.isa, isa) << Name(t) << " has no " << IsaName(isa) << " kernel";
      EXPECT_EQ(k.act == ActFormat::kF32, k.quantize == nullptr);
    }
  }
  EXPECT_FALSE(HasDotKernel(DType::kI32));
}

TEST(QDot, ActivationQuantisationIsIdenticalAtEveryLevelAndRoundsHalfToEven) {
  const int64_t n = 32 * 40;
  std::vector<float> x = Values(n, 1);
  // Block 0: amax 127 makes the inverse scale exactly 1, so x * id = x: ties at +-2.5, 3.5, 0.5.
  const float ties[] = {127, 2.5f, 3.5f, -2.5f, -3.5f, 0.5f, -0.5f, 126.5f, -127};
  for (int j = 0; j < 32; ++j) x[j] = j < 9 ? ties[j] : 1.0f;
  // Block 1 sums to 96000, more than f16 holds (Q8_1's s).
  for (int j = 32; j < 64; ++j) x[j] = 3000.0f;
  const int8_t want[] = {127, 2, 4, -2, -4, 0, 0, 126, -127};
  for (ActFormat f : {ActFormat::kQ8_0, ActFormat::kQ8_1}) {
    const DType w = f == ActFormat::kQ8_0 ? DType::kQ8_0 : DType::kQ4_1;
    const int q_at = f == ActFormat::kQ8_0 ? 2 : 8;
    std::vector<uint8_t> ref(ActRowBytes(f, n));
    GetDotKernel(w, Isa::kScalar).quantize(x.data(), n, ref.data());
    for (int j = 0; j < 9; ++j) EXPECT_EQ(static_cast<int8_t>(ref[q_at + j]), want[j]) << j;
    EXPECT_EQ(Half(ref.data()), F16ToF32(F32ToF16(1.0f)));  // d = 127 / 127
    for (Isa isa : Levels()) {
      std::vector<uint8_t> got(ref.size());
      GetDotKernel(w, isa).quantize(x.data(), n, got.data());
      EXPECT_EQ(got, ref) << IsaName(isa);
    }
    // Each element within half a step of x, and Q8_1's s = f16(d * sum q).
    const int bytes = f == ActFormat::kQ8_0 ? kQ8_0Bytes : kQ8_1Bytes;
    int overflows = 0;  // blocks whose sum f16 cannot hold (the 1e4-scaled ones)
    for (int64_t b = 0; b < n / 32; ++b) {
      const uint8_t* blk = &ref[b * bytes];
      float amax = 0;
      int sum = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
      for (int j = 0; j < 32; ++j) {
        const int q = static_cast<int8_t>(blk[q_at + j]);
        sum += q;
        EXPECT_LE(std::fabs(q * (amax / 127) - x[b * 32 + j]), amax / 127 * 0.5001 + 1e-30);
      }
      if (f == ActFormat::kQ8_1) {
        // s = f16(d * sum) where f16 holds it (as ggml), else the float product.
        float s;
        std::memcpy(&s, blk + 4, 4);
        const float exact = amax / 127 * static_cast<float>(sum);
        const float h = F16ToF32(F32ToF16(exact));
        EXPECT_EQ(s, std::isinf(h) ? exact : h);
        overflows += std::isinf(h);
      }
    }
    if (f == ActFormat::kQ8_1) {
      EXPECT_GT(overflows, 0);
    }
  }
}

// Q8_K (ggml's quantize_row_q8_K): the first element of largest magnitude, max, sets iscale =
// -127 / max; q = round-half-even(iscale * x); d = 1 / iscale (f32); bsums the sums of q per 16.
TEST(QDot, Q8KActivationsAreIdenticalAtEveryLevelAndFollowGgml) {
  const int64_t n = 256 * 12;
  std::vector<float> x = Values(n, 11);
  // Block 0: -127 comes first among the largest magnitudes (127 follows): iscale = 1, d = 1, and
  // x * iscale = x hits the ties exactly.
  const float ties[] = {-127, 127, 2.5f, 3.5f, -2.5f, -3.5f, 0.5f, -0.5f, 126.5f};
  const int8_t want0[] = {-127, 127, 2, 4, -2, -4, 0, 0, 126};
  // Block 1: +127 first: iscale = -1, d = -1, every level negated.
  const float ties1[] = {1, 127, -127, 2.5f, 3.5f};
  const int8_t want1[] = {-1, -127, 127, -2, -4};
  for (int j = 0; j < 256; ++j) x[j] = j < 9 ? ties[j] : 1.0f;
  for (int j = 0; j < 256; ++j) x[256 + j] = j < 5 ? ties1[j] : 0.25f;
  for (int j = 0; j < 256; ++j) x[512 + j] = 0.0f;    // block 2: all zero
  for (int j = 0; j < 256; ++j) x[768 + j] = 1e-38f;  // block 3: 127 / max overflows
  x[1024 + 200] = -3e4f;                              // block 4: one outlier, negative
  const DotKernel ref_k = GetDotKernel(DType::kQ4_K, Isa::kScalar);
  ASSERT_EQ(ref_k.act, ActFormat::kQ8_K);
  std::vector<uint8_t> ref(ActRowBytes(ActFormat::kQ8_K, n));
  ASSERT_EQ(ref.size(), 12u * 292);
  ref_k.quantize(x.data(), n, ref.data());
  for (int j = 0; j < 9; ++j) EXPECT_EQ(static_cast<int8_t>(ref[4 + j]), want0[j]) << j;
  for (int j = 0; j < 5; ++j) EXPECT_EQ(static_cast<int8_t>(ref[292 + 4 + j]), want1[j]) << j;
  EXPECT_EQ(F32At(&ref[0]), 1.0f);
  EXPECT_EQ(F32At(&ref[292]), -1.0f);
  for (int i = 584; i < 4 * 292; ++i) ASSERT_EQ(ref[i], 0) << "blocks 2, 3 are written as zeros";
  for (Isa isa : Levels()) {
    for (DType t : {DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
      const DotKernel k = GetDotKernel(t, isa);
      ASSERT_EQ(k.act, ActFormat::kQ8_K);
      std::vector<uint8_t> got(ref.size());
      k.quantize(x.data(), n, got.data());
      EXPECT_EQ(got, ref) << Name(t) << " " << IsaName(isa);
    }
  }
  for (int64_t b = 4; b < n / 256; ++b) {
    const uint8_t* blk = &ref[b * 292];
    const float* xb = &x[b * 256];
    float amax = 0, max = 0;
    for (int j = 0; j < 256; ++j) {
      if (std::fabs(xb[j]) > amax) amax = std::fabs(xb[j]), max = xb[j];
    }
    const float d = F32At(blk);
    EXPECT_EQ(d, 1.0f / (-127.0f / max)) << b;
    for (int j = 0; j < 256; ++j) {
      const int q = static_cast<int8_t>(blk[4 + j]);
      EXPECT_LE(std::abs(q), 127);
      EXPECT_LE(std::fabs(q * double{d} - xb[j]), std::fabs(d) * 0.5001) << b << " " << j;
    }
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += static_cast<int8_t>(blk[4 + 16 * g + j]);
      int16_t bsum;
      std::memcpy(&bsum, blk + 260 + 2 * g, 2);
      EXPECT_EQ(bsum, sum) << b << " " << g;
    }
  }
}

// Non-finite input has no meaningful result, but a defined one, the same at every level: NaN never
// sets the scale and becomes -128; an infinite element makes iscale -0 (d infinite).
TEST(QDot, Q8KActivationsOfNonFiniteInputAreIdenticalAtEveryLevel) {
  std::vector<float> x = Values(256 * 3, 12);
  x[17] = std::nanf("");
  x[256 + 3] = -INFINITY;
  for (int j = 0; j < 256; ++j) x[512 + j] = 0.0f;
  x[512 + 0] = std::nanf(""), x[512 + 9] = 5e-39f;  // NaN and one subnormal: iscale overflows
  std::vector<uint8_t> ref(3 * 292);
  GetDotKernel(DType::kQ6_K, Isa::kScalar).quantize(x.data(), 256 * 3, ref.data());
  EXPECT_EQ(static_cast<int8_t>(ref[4 + 17]), -128);
  EXPECT_TRUE(std::isfinite(F32At(&ref[0])));
  EXPECT_TRUE(std::isinf(F32At(&ref[292])));
  for (int i = 584; i < 876; ++i) EXPECT_EQ(ref[i], 0);
  for (Isa isa : Levels()) {
    std::vector<uint8_t> got(ref.size());
    GetDotKernel(DType::kQ6_K, isa).quantize(x.data(), 256 * 3, got.data());
    EXPECT_EQ(got, ref) << IsaName(isa);
  }
}

TEST(QDot, EveryDtypeAndLevelMatchesFloat64) {
  for (int64_t n : {32, 96, 256, 512, 4096}) {
    const auto w = Values(n, 2), x = Values(n, 3);
    for (DType t : kAll) {
      if (IsK(t) && n % 256 != 0) continue;
      const auto wq = Encode(t, w, 1, n);
      for (Isa isa : Levels()) {
        const DotKernel k = GetDotKernel(t, isa);
        std::vector<uint8_t> act(ActRowBytes(k.act, n));
        if (k.quantize) {
          k.quantize(x.data(), n, act.data());
        } else {
          std::memcpy(act.data(), x.data(), n * sizeof(float));
        }
        double mag;
        const double want = Reference(t, wq.data(), k.act, act.data(), n, &mag);
        // float32 rounding of the block products and of the sums over blocks / partial sums.
        const double bound = mag * (n / 32 + 16) * 0x1p-24;
        EXPECT_NEAR(k.dot(n, wq.data(), act.data()), want, bound)
            << Name(t) << " " << IsaName(isa) << " n=" << n;
      }
    }
  }
}

TEST(QDot, FloatKernelsHandleLengthsThatAreNotMultiplesOfTheVectorWidth) {
  for (int64_t n : {1, 7, 9, 31, 33, 100}) {
    const auto w = Values(n, 4), x = Values(n, 5);
    for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) {
      const auto wq = Encode(t, w, 1, n);
      for (Isa isa : Levels()) {
        double mag;
        const auto* act = reinterpret_cast<const uint8_t*>(x.data());
        const double want = Reference(t, wq.data(), ActFormat::kF32, act, n, &mag);
        EXPECT_NEAR(GetDotKernel(t, isa).dot(n, wq.data(), act), want, mag * 32 * 0x1p-24)
            << Name(t) << " " << IsaName(isa) << " n=" << n;
      }
    }
  }
}

// The 4-token kernels (prefill) give each token exactly what the 1-token kernel gives it.
TEST(QDot, FourTokenKernelsEqualTheOneTokenKernelBitForBit) {
  const int64_t n = 512, stride_pad = 8;  // activation rows not packed back to back
  const auto w = Values(n, 20), x = Values(4 * n, 21);
  int tested = 0;
  for (DType t : kAll) {
    const auto wq = Encode(t, w, 1, n);
    for (Isa isa : Levels()) {
      const DotKernel k = GetDotKernel(t, isa);
      if (!k.dot4) continue;
      const uint64_t stride = ActRowBytes(k.act, n) + stride_pad;
      std::vector<uint8_t> act(4 * stride);
      for (int c = 0; c < 4; ++c) {
        if (k.quantize) {
          k.quantize(&x[c * n], n, &act[c * stride]);
        } else {
          std::memcpy(&act[c * stride], &x[c * n], n * sizeof(float));
        }
      }
      float four[4];
      k.dot4(n, wq.data(), act.data(), stride, four);
      for (int c = 0; c < 4; ++c)
        EXPECT_EQ(four[c], k.dot(n, wq.data(), &act[c * stride])) << Name(t) << " " << c;
      ++tested;
    }
  }
  if (BestIsa(DetectCpu()) >= Isa::kAvx2) {
    EXPECT_GE(tested, 10);  // f32, f16, bf16, q8_0, q4_0, q5_0, q4_1, q5_1, q4_K, q5_K at AVX2
  }
  if (BestIsa(DetectCpu()) >= Isa::kAvx512) {
    EXPECT_GE(tested, 21);  // and all 11 dtypes (q6_K too) at AVX-512
  }
}

// ---- AVX-512: every kernel computes what the AVX2 kernel computes, bit for bit (qdot.h) ----

// The AVX-512 kernel variants this CPU can run: with VNNI (if it has it) and without.
std::vector<std::pair<const char*, bool>> Avx512Variants() {
  std::vector<std::pair<const char*, bool>> v;
  if (BestIsa(DetectCpu()) < Isa::kAvx512) return v;
  if (DetectCpu().avx512vnni) v.push_back({"avx512-vnni", true});
  v.push_back({"avx512-no-vnni", false});
  return v;
}

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

void PutF16(uint8_t* p, float v) {
  const uint16_t h = F32ToF16(v);
  std::memcpy(p, &h, 2);
}

// Offsets of the f16 scale fields in a weight block of dtype t (the rest of the block is any
// bytes: every level, every sub-block scale bit pattern).
std::vector<int> ScaleFields(DType t) {
  switch (t) {
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ5_0:
      return {0};
    case DType::kQ4_1:
    case DType::kQ5_1:
    case DType::kQ4_K:
    case DType::kQ5_K:
      return {0, 2};
    case DType::kQ6_K:
      return {208};
    default:
      return {};
  }
}

// n elements of weights of dtype t as uniformly random bytes with finite random f16 scales.
std::vector<uint8_t> RandomWeightBytes(DType t, int64_t n, std::mt19937& rng) {
  std::vector<uint8_t> w(*BytesFor(t, n));
  for (uint8_t& b : w) b = static_cast<uint8_t>(rng());
  std::normal_distribution<float> dist(0.0f, 0.01f);
  const int block = Info(t).block_bytes;
  for (size_t at = 0; at < w.size(); at += block) {
    for (int f : ScaleFields(t)) PutF16(&w[at + f], dist(rng));
  }
  return w;
}

// An activation row of format f as random bytes: any int8 levels (-128 too, which quantising
// finite input never writes), any Q8_K bsums, random finite d and Q8_1 s.
std::vector<uint8_t> RandomActBytes(ActFormat f, int64_t n, std::mt19937& rng) {
  std::vector<uint8_t> a(ActRowBytes(f, n));
  for (uint8_t& b : a) b = static_cast<uint8_t>(rng());
  std::normal_distribution<float> dist(0.0f, 1.0f);
  if (f == ActFormat::kQ8_0) {
    for (size_t at = 0; at < a.size(); at += kQ8_0Bytes) PutF16(&a[at], dist(rng));
  } else if (f == ActFormat::kQ8_1) {
    for (size_t at = 0; at < a.size(); at += kQ8_1Bytes) {
      PutF16(&a[at], dist(rng));
      const float s = 100 * dist(rng);
      std::memcpy(&a[at + 4], &s, 4);
    }
  } else if (f == ActFormat::kQ8_K) {
    for (size_t at = 0; at < a.size(); at += kQ8_KBytes) {
      const float d = dist(rng);
      std::memcpy(&a[at], &d, 4);
    }
  }
  return a;
}

TEST(QDot, Avx512KernelsEqualTheAvx2KernelsBitForBit) {
  const auto variants = Avx512Variants();
  if (variants.empty()) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(42);
  int checked = 0;
  for (DType t : kAll) {
    const bool is_float = t == DType::kF32 || t == DType::kF16 || t == DType::kBF16;
    // Block rows: odd block counts (two blocks per step) and the kernels' chunks of 16 blocks
    // with remainders (672 = 21 blocks, 1120 = 35); float rows: every remainder of 16 and 8.
    const std::vector<int64_t> lengths =
        is_float ? std::vector<int64_t>{1, 7, 8, 9, 15, 16, 17, 24, 31, 33, 100, 512, 1000}
        : IsK(t) ? std::vector<int64_t>{256, 512, 768, 4096}
                 : std::vector<int64_t>{32, 64, 96, 160, 512, 672, 1120, 4096};
    const DotKernel ref = avx2::GetKernel(t);
    EXPECT_TRUE(ref.dot4 != nullptr || t == DType::kQ6_K) << Name(t);
    for (int64_t n : lengths) {
      // Encoded Gaussian data with quantised activations, then (block formats) raw random bytes;
      // float rows also placed at byte offsets 4 and 16 from a 64-byte boundary, all four alike
      // (the float kernels read such rows as aligned cache lines, see DotFloatN).
      for (int raw = 0; raw < 3; ++raw) {
        const auto w =
            raw && !is_float ? RandomWeightBytes(t, n, rng) : Encode(t, Values(n, 30), 1, n);
        const uint64_t bytes = ActRowBytes(ref.act, n);
        // Rows not packed back to back: 4 bytes apart, or (float rows) a whole cache line.
        const uint64_t stride = is_float && raw ? (bytes + 64) / 64 * 64 : bytes + 4;
        std::vector<uint8_t> buffer(4 * stride + 128);
        uint8_t* const base =
            buffer.data() + (64 - reinterpret_cast<uintptr_t>(buffer.data()) % 64);
        const std::span<uint8_t> act(base + (is_float ? 4 + 12 * (raw == 2) : 0), 4 * stride);
        const auto x = Values(4 * n, 31 + static_cast<uint32_t>(n));
        for (int c = 0; c < 4; ++c) {
          if (raw && !is_float) {
            const auto a = RandomActBytes(ref.act, n, rng);
            std::memcpy(&act[c * stride], a.data(), a.size());
          } else if (ref.quantize) {
            ref.quantize(&x[c * n], n, &act[c * stride]);
          } else {
            std::memcpy(&act[c * stride], &x[c * n], n * sizeof(float));
          }
        }
        for (const auto& [name, vnni] : variants) {
          const DotKernel k = avx512::GetKernel(t, vnni);
          ASSERT_NE(k.dot, nullptr) << Name(t) << " " << name;
          ASSERT_NE(k.dot4, nullptr) << Name(t) << " " << name;
          EXPECT_EQ(k.isa, Isa::kAvx512);
          EXPECT_EQ(k.act, ref.act);
          EXPECT_EQ(k.quantize, ref.quantize);  // AVX2's quantisers (the reference bytes)
          float four[4], ref4[4];
          k.dot4(n, w.data(), act.data(), stride, four);
          if (ref.dot4) ref.dot4(n, w.data(), act.data(), stride, ref4);
          for (int c = 0; c < 4; ++c) {
            const uint8_t* a = &act[c * stride];
            const float got = k.dot(n, w.data(), a), want = ref.dot(n, w.data(), a);
            // Float rows: the last n % 8 elements may round differently (qdot_avx512.cc).
            if (!is_float || n % 8 == 0) {
              ASSERT_EQ(Bits(got), Bits(want)) << Name(t) << " " << name << " n=" << n
                                               << " raw=" << raw << ": " << got << " vs " << want;
            }
            ASSERT_EQ(Bits(four[c]), Bits(got)) << Name(t) << " " << name << " 4-token, n=" << n;
            if (ref.dot4 && (!is_float || n % 8 == 0)) {
              ASSERT_EQ(Bits(ref4[c]), Bits(got)) << Name(t) << " " << name << " n=" << n;
            }
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 500);
}

TEST(MatMul, SharedThreadedAndSingleProductsAgreeBitForBit) {
  ThreadPool pool(2);
  // cols 96 for the 32-element block formats, 512 (every activation format at once) for all.
  for (const int cols : {96, 512})
    for (Isa isa : Levels()) {
      const int rows = 37, n_tokens = 70;  // more tokens than one tile
      const auto x = Values(n_tokens * cols, 6);
      std::vector<std::vector<uint8_t>> weights;
      std::vector<std::vector<float>> single, shared;
      std::vector<MatMulOut> products;
      for (DType t : kAll) {
        if (IsK(t) && cols % 256 != 0) continue;
        weights.push_back(Encode(t, Values(rows * cols, 7), rows, cols));
        single.emplace_back(n_tokens * rows);
        shared.emplace_back(n_tokens * rows);
        products.push_back({MakeMatView(t, rows, cols, weights.back().data()), nullptr});
      }
      for (size_t i = 0; i < products.size(); ++i) {
        products[i].out = shared[i].data();
        MatMulShared({&products[i], 1}, x.data(), n_tokens, nullptr, isa);
        single[i] = shared[i];
      }
      MatMulShared(products, x.data(), n_tokens, &pool, isa);
      for (size_t i = 0; i < products.size(); ++i) {
        EXPECT_EQ(shared[i], single[i])
            << Name(products[i].w.dtype) << " " << IsaName(isa) << " cols " << cols;
        // And each entry is the kernel's dot of that row and token (float weights: one FMA
        // chain, kernels/gemm.h).
        const int tok = 69, r = 36;
        const DType dt = products[i].w.dtype;
        if (dt == DType::kF32 || dt == DType::kBF16 || dt == DType::kF16) {
          float want = 0;
          const GemmType type = dt == DType::kF32    ? GemmType::kF32
                                : dt == DType::kBF16 ? GemmType::kBF16
                                                     : GemmType::kF16;
          GemmReference(1, 1, cols, {&x[tok * cols], cols, 1},
                        {products[i].w.row(r), 1, cols, type}, &want, 1, false);
          EXPECT_EQ(shared[i][tok * rows + r], want) << IsaName(isa);
          continue;
        }
        const DotKernel k = GetDotKernel(products[i].w.dtype, isa);
        std::vector<uint8_t> act(ActRowBytes(k.act, cols));
        if (k.quantize) {
          k.quantize(&x[tok * cols], cols, act.data());
        } else {
          std::memcpy(act.data(), &x[tok * cols], cols * sizeof(float));
        }
        EXPECT_EQ(shared[i][tok * rows + r], k.dot(cols, products[i].w.row(r), act.data()));
      }
    }
}

// Against the unquantised product: the 8-bit activations add at most half a step per element.
TEST(MatMul, ErrorFromEightBitActivationsIsWithinHalfAStep) {
  const int rows = 16, cols = 512;
  const auto x = Values(cols, 8);
  for (DType t : kAll) {
    const auto wq = Encode(t, Values(rows * cols, 9), rows, cols);
    const MatView view = MakeMatView(t, rows, cols, wq.data());
    const bool is_float = t == DType::kF32 || t == DType::kF16 || t == DType::kBF16;
    const int act_block = IsK(t) ? 256 : 32;  // elements per activation block (one d)
    std::vector<float> out(rows), wr(cols);
    MatMul(view, x.data(), 1, out.data(), nullptr);
    for (int r = 0; r < rows; ++r) {
      GetRow(view, r, wr.data());
      double want = 0, bound = 0;
      for (int b = 0; b < cols / act_block; ++b) {
        float amax = 0, wsum = 0, wabs = 0;
        for (int j = 0; j < act_block; ++j) {
          const int c = b * act_block + j;
          want += double{wr[c]} * x[c];
          amax = std::max(amax, std::fabs(x[c]));
          wsum += std::fabs(wr[c]) * std::fabs(x[c]);
          wabs += std::fabs(wr[c]);
        }
        bound += wsum * 64 * 0x1p-24;  // float32 sums
        if (is_float) continue;
        // Half a quantisation step per element.
        bound += wabs * amax / 127 * 0.5;
        if (IsK(t)) {
          // d = 1 / iscale is rounded once (2^-24 relative), and the kernel's float rounding is
          // relative to the offset terms as well (see KOffset).
          double offsets = 0;
          const uint8_t* blk = view.row(r) + b * Info(t).block_bytes;
          for (int j = 0; j < act_block; ++j) offsets += KOffset(t, blk, j);
          bound += wsum * 0x1p-22 + offsets * amax * 64 * 0x1p-24;
        } else {
          // d's f16 rounding (2^-11 relative), the f16 rounding of s = d * sum(q) times the block
          // minimum (|m| <= max |w|).
          float wmax = 0;
          for (int j = 0; j < act_block; ++j) wmax = std::max(wmax, std::fabs(wr[b * 32 + j]));
          bound += wsum * 0x1p-10 + wmax * 32 * amax * 0x1p-10;
        }
      }
      EXPECT_NEAR(out[r], want, bound) << Name(t) << " row " << r;
    }
  }
}

}  // namespace
}  // namespace herd::kernels
