// The integer GEMM on packed weights (kernels/qgemm.h): every level equals the scalar reference bit
// for bit, results do not depend on how many tokens share a call or on threads, and they agree
// with the row-major dot kernels (same activation quantisation, different float rounding) and
// with float64 products of the dequantised weights.
#include "kernels/qgemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels_test_util.h"

namespace herd::kernels {
namespace {

using testing::Levels;
using testing::Quantize;
using testing::RandomVec;

struct Case {
  DType dtype;
  int64_t rows, cols;
};

class QGemmTest : public ::testing::TestWithParam<Case> {};

// out[t * rows + r] of the packed product at level isa.
std::vector<float> Product(const MatView& w, const std::vector<float>& x, int64_t n, Isa isa,
                           ThreadPool* pool) {
  std::vector<float> out(n * w.rows, NAN);
  const MatMulOut p{w, out.data()};
  MatMulShared({&p, 1}, x.data(), n, pool, isa);
  return out;
}

TEST_P(QGemmTest, LevelsTokensAndThreadsAgreeBitForBit) {
  const Case c = GetParam();
  const auto wq = Quantize(c.dtype, RandomVec(c.rows * c.cols, 1, 0.05f));
  MatView w = MakeMatView(c.dtype, c.rows, c.cols, wq.data());
  const PackedMat packed = Pack(w, nullptr);
  w.packed = &packed;
  // 21 >= kUnpackMinTokens tokens run the unpacked-group kernels where a level has them; the 1- and
  // 7-token calls below the packed ones.
  const int64_t n = 21;
  static_assert(kUnpackMinTokens <= 21 && kUnpackMinTokens > 7);
  const auto x = RandomVec(n * c.cols, 2, 1.0f, 0.1f);
  const auto ref = Product(w, x, n, Isa::kScalar, nullptr);
  ThreadPool pool(2);
  for (Isa isa : Levels()) {
    SCOPED_TRACE(IsaName(isa));
    const auto all = Product(w, x, n, isa, &pool);
    EXPECT_EQ(std::memcmp(all.data(), ref.data(), all.size() * 4), 0);
    // Token 5 alone, and tokens 3..9 as a batch of 7: the same bits.
    const std::vector<float> x5(x.begin() + 5 * c.cols, x.begin() + 6 * c.cols);
    const auto one = Product(w, x5, 1, isa, nullptr);
    EXPECT_EQ(std::memcmp(one.data(), ref.data() + 5 * c.rows, c.rows * 4), 0);
    const std::vector<float> x7(x.begin() + 3 * c.cols, x.begin() + 10 * c.cols);
    const auto seven = Product(w, x7, 7, isa, nullptr);
    EXPECT_EQ(std::memcmp(seven.data(), ref.data() + 3 * c.rows, 7 * c.rows * 4), 0);
  }
}

TEST_P(QGemmTest, AgreesWithDotKernelsAndFloat64) {
  const Case c = GetParam();
  const auto wf = RandomVec(c.rows * c.cols, 3, 0.05f);
  const auto wq = Quantize(c.dtype, wf);
  const auto wd = testing::Dequantize(c.dtype, wq, wf.size());
  MatView w = MakeMatView(c.dtype, c.rows, c.cols, wq.data());
  const int64_t n = 5;
  const auto x = RandomVec(n * c.cols, 4, 1.0f, 0.1f);
  const auto rows = Product(w, x, n, Isa::kScalar, nullptr);  // the row-major dot kernels
  const PackedMat packed = Pack(w, nullptr);
  w.packed = &packed;
  const auto got = Product(w, x, n, Isa::kScalar, nullptr);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < c.rows; ++r) {
      double exact = 0, mag = 0;
      for (int64_t k = 0; k < c.cols; ++k) {
        exact += double{wd[r * c.cols + k]} * x[t * c.cols + k];
        mag += std::fabs(double{wd[r * c.cols + k]} * x[t * c.cols + k]);
      }
      const float g = got[t * c.rows + r];
      // Same integer sums as the dot kernels; only float rounding of the block sums differs.
      EXPECT_NEAR(g, rows[t * c.rows + r], 1e-5 * mag) << "t " << t << " r " << r;
      // Activation quantisation (int8 per block) bounds the error against float64.
      EXPECT_NEAR(g, exact, 1e-2 * mag) << "t " << t << " r " << r;
    }
  }
}

// Rows looked up in the packed copy (a packed token embedding) are the dequantised rows, exactly.
TEST_P(QGemmTest, UnpackRowIsDequantizeRow) {
  const Case c = GetParam();
  const auto wq = Quantize(c.dtype, RandomVec(c.rows * c.cols, 5, 0.05f));
  const auto wd = testing::Dequantize(c.dtype, wq, c.rows * c.cols);
  MatView w = MakeMatView(c.dtype, c.rows, c.cols, wq.data());
  const PackedMat packed = Pack(w, nullptr);
  w.packed = &packed;
  std::vector<float> row(c.cols);
  for (int64_t r = 0; r < c.rows; ++r) {
    GetRow(w, r, row.data());
    ASSERT_EQ(std::memcmp(row.data(), wd.data() + r * c.cols, c.cols * 4), 0) << "row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, QGemmTest,
                         ::testing::Values(Case{DType::kQ8_0, 37, 96}, Case{DType::kQ4_0, 37, 96},
                                           Case{DType::kQ8_0, 32, 512}, Case{DType::kQ4_0, 48, 512},
                                           Case{DType::kQ4_K, 37, 512}, Case{DType::kQ6_K, 37, 512},
                                           Case{DType::kQ4_K, 16, 256},
                                           Case{DType::kQ6_K, 64, 256}),
                         [](const auto& info) {
                           return std::string(Name(info.param.dtype)) + "_" +
                                  std::to_string(info.param.rows) + "x" +
                                  std::to_string(info.param.cols);
                         });

TEST(QGemmTest, ExtremeLevelsStayExact) {
  // Levels at the ends of their ranges (q8_0: -127..127 weights against +-127 activations) must
  // not saturate any intermediate: every level equals the scalar reference.
  const int64_t rows = 16, cols = 256, n = 3;
  std::vector<float> wf(rows * cols), x(n * cols);
  for (size_t i = 0; i < wf.size(); ++i) wf[i] = (i % 3 == 0) ? -1.0f : 1.0f;
  for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 5 == 0) ? 1.0f : -1.0f;
  // Rows 8..15: every weight at the top level and every activation at 127, the largest sums.
  for (int64_t r = 8; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) wf[r * cols + k] = k % 2 ? 2.0f : 1.0f;
  for (int64_t k = 0; k < cols; ++k) x[k] = k % 2 ? 2.0f : 1.0f;
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ6_K}) {
    SCOPED_TRACE(std::string(Name(t)));
    const auto wq = Quantize(t, wf);
    MatView w = MakeMatView(t, rows, cols, wq.data());
    const PackedMat packed = Pack(w, nullptr);
    w.packed = &packed;
    const auto ref = Product(w, x, n, Isa::kScalar, nullptr);
    for (Isa isa : Levels()) {
      const auto got = Product(w, x, n, isa, nullptr);
      EXPECT_EQ(std::memcmp(got.data(), ref.data(), got.size() * 4), 0) << IsaName(isa);
    }
  }
}

}  // namespace
}  // namespace herd::kernels
