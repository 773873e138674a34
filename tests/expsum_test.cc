// kernels/expsum.h: every ISA level computes the scalar reference's bits (exponentials and sum),
// the reference exp is within 2 ulp of the exact value, and the edges (underflow, -inf, NaN,
// lengths around the 16 lanes) behave as documented.
#include "kernels/expsum.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

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

TEST(ExpSum, ExpScaledEveryLevelEqualsReference) {
  for (int64_t n : {0, 3, 16, 37, 1000}) {
    const std::vector<float> x = testing::RandomVec(static_cast<size_t>(n), 40 + n, 30.0f);
    for (Isa isa : Levels()) {
      std::vector<float> got(n);
      ExpScaled(x.data(), n, -1.0f, got.data(), isa);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(got[i], ExpRef(-x[i])) << IsaName(isa) << " n " << n << " i " << i;
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
  std::vector<float> x = testing::RandomVec(37, 3);
  x[30] = 9.5f, x[2] = NAN;
  EXPECT_EQ(MaxOf(x.data(), 37), 9.5f);
  EXPECT_EQ(MaxOf(x.data(), 0), -INFINITY);
}

}  // namespace
}  // namespace herd::kernels
