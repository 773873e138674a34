// Dot kernels (kernels/qdot.h) at every ISA level this CPU has, against float64 math written out
// here: activation quantisation (bytes identical across levels, rounding as specified), each
// weight dtype's dot product, and MatMul / MatMulShared built on them.
#include "kernels/qdot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

namespace herd::kernels {
namespace {

constexpr DType kAll[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0,
                          DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1};

std::vector<Isa> Levels() {
  std::vector<Isa> levels;
  for (int i = 0; i <= static_cast<int>(BestIsa(DetectCpu())); ++i)
    levels.push_back(static_cast<Isa>(i));
  return levels;
}

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

// The activation row as the kernel sees it: floats, or d * q per Q8 block.
std::vector<double> DecodeAct(ActFormat f, const uint8_t* act, int64_t n) {
  std::vector<double> a(n);
  if (f == ActFormat::kF32) {
    for (int64_t i = 0; i < n; ++i) a[i] = reinterpret_cast<const float*>(act)[i];
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

// float64 of what the kernel defines: sum of W[i] * A[i] over the dequantised weight row, except
// that a q4_1 / q5_1 block's minimum m multiplies the activation block's stored s (f16 of
// d * sum q) rather than the exact sum. Also returns sum |W[i] * A[i]| for the error bound.
double Reference(DType t, const uint8_t* w, ActFormat f, const uint8_t* act, int64_t n,
                 double* magnitude) {
  std::vector<float> wf(n);
  DequantizeRow(t, w, n, wf.data());
  const std::vector<double> a = DecodeAct(f, act, n);
  double sum = 0;
  *magnitude = 0;
  for (int64_t i = 0; i < n; ++i) sum += wf[i] * a[i], *magnitude += std::fabs(wf[i] * a[i]);
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

TEST(QDot, EveryDtypeAndLevelMatchesFloat64) {
  for (int64_t n : {32, 96, 4096}) {
    const auto w = Values(n, 2), x = Values(n, 3);
    for (DType t : kAll) {
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

TEST(MatMul, SharedThreadedAndSingleProductsAgreeBitForBit) {
  ThreadPool pool(2);
  const int rows = 37, cols = 96, n_tokens = 70;  // more tokens than one tile
  const auto x = Values(n_tokens * cols, 6);
  for (Isa isa : Levels()) {
    std::vector<std::vector<uint8_t>> weights;
    std::vector<std::vector<float>> single, shared;
    std::vector<MatMulOut> products;
    for (DType t : kAll) {
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
      EXPECT_EQ(shared[i], single[i]) << Name(products[i].w.dtype) << " " << IsaName(isa);
      // And each entry is the kernel's dot of that row and token.
      const DotKernel k = GetDotKernel(products[i].w.dtype, isa);
      std::vector<uint8_t> act(ActRowBytes(k.act, cols));
      const int tok = 69, r = 36;
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
  const int rows = 16, cols = 256;
  const auto x = Values(cols, 8);
  for (DType t : kAll) {
    const auto wq = Encode(t, Values(rows * cols, 9), rows, cols);
    const MatView view = MakeMatView(t, rows, cols, wq.data());
    std::vector<float> out(rows), wr(cols);
    MatMul(view, x.data(), 1, out.data(), nullptr);
    for (int r = 0; r < rows; ++r) {
      GetRow(view, r, wr.data());
      double want = 0, bound = 0;
      for (int b = 0; b < cols / 32; ++b) {
        float amax = 0, wsum = 0;
        for (int j = 0; j < 32; ++j) {
          const int c = b * 32 + j;
          want += double{wr[c]} * x[c];
          amax = std::max(amax, std::fabs(x[c]));
          wsum += std::fabs(wr[c]) * std::fabs(x[c]);
        }
        // Half a quantisation step per element, d's f16 rounding (2^-11 relative), the f16
        // rounding of s = d * sum(q) times the block minimum (|m| <= max |w|), and the float32
        // sums.
        float wabs = 0, wmax = 0;
        for (int j = 0; j < 32; ++j) {
          wabs += std::fabs(wr[b * 32 + j]);
          wmax = std::max(wmax, std::fabs(wr[b * 32 + j]));
        }
        bound += (t == DType::kF32 || t == DType::kF16 || t == DType::kBF16)
                     ? 0
                     : wabs * amax / 127 * 0.5 + wsum * 0x1p-10 + wmax * 32 * amax * 0x1p-10;
        bound += wsum * 64 * 0x1p-24;
      }
      EXPECT_NEAR(out[r], want, bound) << Name(t) << " row " << r;
    }
  }
}

}  // namespace
}  // namespace herd::kernels
