// kernels/expsum.h: every ISA level computes the scalar reference's bits (exponentials and sum),
// the reference exp is within 2 ulp of the exact value, and the edges (underflow, -inf, NaN,
// lengths around the 16 lanes) behave as documented.
#include "kernels/expsum.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/backward.h"
#include "kernels/ops.h"
#include "kernels_test_util.h"

namespace herd::kernels {
namespace {

using testing::Levels;

double UlpError(float got, double want) {
  const float w = static_cast<float>(want);
  const float ulp = std::nextafter(w, INFINITY) - w;
  return std::abs(got - want) / ulp;
}

TEST(ExpSum, ReferenceIsWithinTwoUlpOfExp) {
  double worst = 0;
  for (float y = -87.0f; y <= 88.0f; y += 0.000731f) {
    const double err = UlpError(ExpRef(y), std::exp(static_cast<double>(y)));
    worst = std::max(worst, err);
    ASSERT_LE(err, 2.0) << "y " << y << " got " << ExpRef(y);
  }
  EXPECT_GT(worst, 0.0);  // the comparison did compare something inexact
  EXPECT_EQ(ExpRef(0.0f), 1.0f);
}

TEST(ExpSum, Edges) {
  EXPECT_EQ(ExpRef(-INFINITY), 0.0f);
  EXPECT_EQ(ExpRef(-100.0f), 0.0f);
  EXPECT_GT(ExpRef(-87.0f), 0.0f);
  EXPECT_TRUE(std::isnan(ExpRef(NAN)));
  EXPECT_TRUE(std::isfinite(ExpRef(1000.0f)));  // saturates at exp(88)
  EXPECT_EQ(ExpRef(1000.0f), ExpRef(88.0f));
}

TEST(ExpSum, EveryLevelEqualsScalarBitForBit) {
  for (int64_t n : {0, 1, 15, 16, 17, 33, 128, 1000, 128256}) {
    std::vector<float> x = testing::RandomVec(static_cast<size_t>(n), 5 + n, 8.0f);
    if (n > 20) {
      x[3] = -INFINITY, x[7] = -120.0f, x[11] = -87.33f, x[19] = 40.0f;
      x[n - 1] = -INFINITY;  // in the last, partial step where n % 16 != 0
    }
    const float shift = MaxOf(x.data(), n);
    std::vector<float> want(n);
    const double want_sum = ExpShiftSum(x.data(), n, shift, want.data(), Isa::kScalar);
    for (Isa isa : Levels()) {
      std::vector<float> got(n);
      const double sum = ExpShiftSum(x.data(), n, shift, got.data(), isa);
      EXPECT_TRUE(n == 0 || std::memcmp(got.data(), want.data(), n * sizeof(float)) == 0)
          << n << IsaName(isa);
      EXPECT_EQ(sum, want_sum) << n << " " << IsaName(isa);
      EXPECT_EQ(ExpShiftSum(x.data(), n, shift, nullptr, isa), want_sum) << n << IsaName(isa);
      std::vector<float> in_place = x;
      ExpShiftSum(in_place.data(), n, shift, in_place.data(), isa);
      EXPECT_EQ(in_place, want) << n << " " << IsaName(isa);
    }
    double exact = 0;
    for (int64_t i = 0; i < n; ++i) exact += std::exp(static_cast<double>(x[i]) - shift);
    EXPECT_NEAR(want_sum, exact, 3e-7 * exact) << n;
  }
}

// SwiGLU and its backward (built on this exp): every level computes the scalar definition's bits,
// and the definition is within float rounding of the math in double.
TEST(ExpSum, SwiGLUForwardAndBackwardEveryLevelEqualsScalar) {
  for (int64_t n : {0, 1, 7, 8, 9, 16, 17, 100, 1000}) {
    const size_t size = static_cast<size_t>(n);
    std::vector<float> gate = testing::RandomVec(size, 60 + n, 4.0f);
    const std::vector<float> up = testing::RandomVec(size, 61 + n);
    const std::vector<float> dy = testing::RandomVec(size, 62 + n);
    if (n > 9) gate[1] = -100.0f, gate[2] = 100.0f, gate[3] = 0.0f;  // exp underflow, saturation
    std::vector<float> want(size), want_dg(size), want_du(size);
    SwiGLU(gate.data(), up.data(), n, want.data(), Isa::kScalar);
    SwiGLUBackward(gate.data(), up.data(), dy.data(), n, want_dg.data(), want_du.data(),
                   Isa::kScalar);
    for (Isa isa : Levels()) {
      std::vector<float> out(size), dg(size), du(size);
      SwiGLU(gate.data(), up.data(), n, out.data(), isa);
      SwiGLUBackward(gate.data(), up.data(), dy.data(), n, dg.data(), du.data(), isa);
      EXPECT_TRUE(n == 0 || std::memcmp(out.data(), want.data(), size * sizeof(float)) == 0)
          << n << " " << IsaName(isa);
      EXPECT_TRUE(n == 0 || std::memcmp(dg.data(), want_dg.data(), size * sizeof(float)) == 0)
          << n << " " << IsaName(isa);
      EXPECT_TRUE(n == 0 || std::memcmp(du.data(), want_du.data(), size * sizeof(float)) == 0)
          << n << " " << IsaName(isa);
    }
    for (size_t i = 0; i < size; ++i) {
      const double z = gate[i], s = 1.0 / (1.0 + std::exp(-z));
      const double silu = z * s, dsilu = s * (1.0 + z * (1.0 - s));
      EXPECT_NEAR(want[i], silu * up[i], 1e-6 * (1.0 + std::abs(silu * up[i]))) << i;
      EXPECT_NEAR(want_du[i], dy[i] * silu, 1e-6 * (1.0 + std::abs(dy[i] * silu))) << i;
      EXPECT_NEAR(want_dg[i], dy[i] * up[i] * dsilu, 1e-6 * (1.0 + std::abs(dy[i] * up[i]))) << i;
    }
  }
}

TEST(ExpSum, NaNPropagates) {
  for (int at : {21, 37}) {  // in a full step of 16, and in the last, partial one
    std::vector<float> x = testing::RandomVec(40, 9);
    x[at] = NAN;
    for (Isa isa : Levels()) {
      std::vector<float> out(x.size());
      EXPECT_TRUE(std::isnan(ExpShiftSum(x.data(), 40, 0.0f, out.data(), isa))) << IsaName(isa);
      EXPECT_TRUE(std::isnan(out[at]));
      EXPECT_FALSE(std::isnan(out[at - 1]));
    }
  }
}

TEST(ExpSum, MaxOfSkipsNaN) {
  for (Isa isa : Levels()) {
    for (int64_t n : {1, 15, 16, 17, 37, 100}) {
      for (int64_t at : {int64_t{0}, n / 2, n - 1}) {  // the maximum in the first, a middle, the
        std::vector<float> x = testing::RandomVec(static_cast<size_t>(n), 3 + n);  // last step
        x[at] = 9.5f;
        if (n > 2) x[(at + 1) % n] = NAN, x[(at + 2) % n] = -INFINITY;
        EXPECT_EQ(MaxOf(x.data(), n, isa), 9.5f) << n << " " << at << " " << IsaName(isa);
      }
    }
    EXPECT_EQ(MaxOf(nullptr, 0, isa), -INFINITY);
    const float nans[3] = {NAN, NAN, NAN};
    EXPECT_EQ(MaxOf(nans, 3, isa), -INFINITY);
    const float negative[2] = {-3.0f, -INFINITY};
    EXPECT_EQ(MaxOf(negative, 2, isa), -3.0f);
  }
}

}  // namespace
}  // namespace herd::kernels
