// kernels/ops.h RMSNorm and kernels/backward.h RMSNormBackwardRows: every ISA level computes the
// scalar definition's bits (the forward's output and scale; dx and the weight-gradient column
// sums), for row lengths around the vector steps, and the definitions agree with RMSNorm and its
// backward in double.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/backward.h"
#include "kernels/ops.h"
#include "kernels_test_util.h"

namespace herd::kernels {
namespace {

using testing::Levels;
using testing::RandomVec;

TEST(RMSNorm, EveryLevelEqualsScalarAndMatchesFloat64) {
  for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 64, 130, 4096}) {
    const size_t size = static_cast<size_t>(n);
    const std::vector<float> x = RandomVec(size, 11 + n);
    const std::vector<float> w = RandomVec(size, 12 + n, 0.5f, 1.0f);
    std::vector<float> want(size);
    const float want_r = RMSNorm(x.data(), w.data(), n, 1e-5f, want.data(), Isa::kScalar);
    for (Isa isa : Levels()) {
      std::vector<float> y(size);
      const float r = RMSNorm(x.data(), w.data(), n, 1e-5f, y.data(), isa);
      EXPECT_EQ(0, std::memcmp(&r, &want_r, sizeof(float))) << n << " " << IsaName(isa);
      EXPECT_EQ(0, std::memcmp(y.data(), want.data(), size * sizeof(float)))
          << n << " " << IsaName(isa);
      std::vector<float> in_place = x;  // out may alias x
      RMSNorm(in_place.data(), w.data(), n, 1e-5f, in_place.data(), isa);
      EXPECT_EQ(0, std::memcmp(in_place.data(), want.data(), size * sizeof(float))) << n;
    }
    double ss = 0;
    for (float v : x) ss += double{v} * v;
    const double rd = 1.0 / std::sqrt(ss / n + 1e-5);
    EXPECT_NEAR(want_r, rd, 1e-6 * rd) << n;
    for (int64_t j = 0; j < n; ++j)
      EXPECT_NEAR(want[j], x[j] * rd * w[j], 1e-6 * (1 + std::abs(x[j] * rd * w[j]))) << n;
  }
}

TEST(RMSNormBackwardRows, EveryLevelEqualsScalarAndMatchesFloat64) {
  for (int64_t n : {1, 7, 8, 9, 64, 130}) {
    const int64_t rows = 5;
    const size_t size = static_cast<size_t>(rows * n);
    const std::vector<float> x = RandomVec(size, 1 + n), dy = RandomVec(size, 2 + n);
    const std::vector<float> w = RandomVec(static_cast<size_t>(n), 3 + n, 0.5f, 1.0f);
    const std::vector<float> dx0 = RandomVec(size, 4 + n);  // dx is added to
    std::vector<float> r(rows), y(n);
    for (int64_t i = 0; i < rows; ++i) r[i] = RMSNorm(&x[i * n], w.data(), n, 1e-5f, y.data());
    std::vector<float> want_dx = dx0;
    std::vector<double> want_cs(n, 0.25);
    RMSNormBackwardRows(x.data(), w.data(), dy.data(), r.data(), rows, n, want_dx.data(),
                        want_cs.data(), Isa::kScalar);
    for (Isa isa : Levels()) {
      std::vector<float> dx = dx0;
      std::vector<double> cs(n, 0.25);
      RMSNormBackwardRows(x.data(), w.data(), dy.data(), r.data(), rows, n, dx.data(), cs.data(),
                          isa);
      EXPECT_EQ(0, std::memcmp(dx.data(), want_dx.data(), size * sizeof(float)))
          << n << " " << IsaName(isa);
      EXPECT_EQ(0, std::memcmp(cs.data(), want_cs.data(), n * sizeof(double)))
          << n << " " << IsaName(isa);
    }
    // In double: y_j = x_j r w_j with r = (mean(x^2) + eps)^-1/2.
    for (int64_t i = 0; i < rows; ++i) {
      double ss = 0, dot = 0;
      for (int64_t j = 0; j < n; ++j) ss += double{x[i * n + j]} * x[i * n + j];
      const double rd = 1.0 / std::sqrt(ss / n + 1e-5);
      for (int64_t j = 0; j < n; ++j) dot += double{dy[i * n + j]} * w[j] * x[i * n + j];
      for (int64_t j = 0; j < n; ++j) {
        const double g = rd * dy[i * n + j] * w[j] - x[i * n + j] * rd * rd * rd * dot / n;
        EXPECT_NEAR(want_dx[i * n + j], dx0[i * n + j] + g, 2e-5 * (1 + std::abs(g))) << n;
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.25;
      for (int64_t i = 0; i < rows; ++i) {
        double ss = 0;
        for (int64_t k = 0; k < n; ++k) ss += double{x[i * n + k]} * x[i * n + k];
        sum += double{dy[i * n + j]} * x[i * n + j] / std::sqrt(ss / n + 1e-5);
      }
      EXPECT_NEAR(want_cs[j], sum, 1e-6 * (1 + std::abs(sum))) << n << " " << j;
    }
  }
}

}  // namespace
}  // namespace herd::kernels
