// kernels/gemm.h: every ISA level's blocked GEMM computes exactly GemmReference's bits (one FMA
// chain per element), for every operand layout training uses, edge sizes around the micro-tile and
// block sizes, with and without accumulation, and independently of the thread count; and the
// reference itself agrees with a float64 product.
#include "kernels/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "base/thread_pool.h"
#include "kernels/convert.h"
#include "kernels_test_util.h"

namespace herd::kernels {
namespace {

using testing::RandomVec;

using testing::Levels;

// Storage for an m x n operand in one of the two layouts, read through a StridedMat.
struct Operand {
  std::vector<float> data;
  StridedMat view;
  Operand(int64_t rows, int64_t cols, bool transposed, uint32_t seed)
      : data(RandomVec(static_cast<size_t>(rows * cols), seed)) {
    view = transposed ? StridedMat{data.data(), 1, rows} : StridedMat{data.data(), cols, 1};
  }
};

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct Shape {
  int64_t m, n, k;
};

TEST(Gemm, EveryLevelEqualsReferenceBitForBit) {
  // Edges of the micro-tiles (4x4, 6x16, 12x32), of the blocks (mc = 8 mr, nc = 16 nr, kc = 256)
  // and degenerate sizes.
  const Shape shapes[] = {{1, 1, 1},
                          {1, 37, 64},
                          {5, 3, 7},
                          {12, 32, 256},
                          {13, 33, 257},
                          {97, 70, 300},
                          {64, 515, 64},
                          {200, 40, 513},
                          {7, 600, 31},
                          {3, 5, 0},
                          // k = 1024: a row-major A is packed (its rows are 4 KiB apart)
                          {20, 40, 1024},
                          // m <= 4 with a transposed B: the decode GEMV
                          {2, 45, 70},
                          {4, 16, 33},
                          {3, 200, 300}};
  ThreadPool pool(3);
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    for (int layout = 0; layout < 4; ++layout) {
      const bool ta = layout & 1, tb = layout & 2;
      const Operand a(s.m, s.k, ta, seed++), b(s.k, s.n, tb, seed++);
      for (bool accumulate : {false, true}) {
        const int64_t ldc = s.n + 3;  // a leading dimension wider than n: padding stays untouched
        const std::vector<float> c0 = RandomVec(static_cast<size_t>(s.m * ldc), seed++);
        std::vector<float> want = c0;
        GemmReference(s.m, s.n, s.k, a.view, b.view, want.data(), ldc, accumulate);
        for (Isa isa : Levels()) {
          for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
            std::vector<float> got = c0;
            Gemm(s.m, s.n, s.k, a.view, b.view, got.data(), ldc, accumulate, p, isa);
            EXPECT_TRUE(SameBits(got, want))
                << "m " << s.m << " n " << s.n << " k " << s.k << " layout " << layout
                << " accumulate " << accumulate << " isa " << IsaName(isa)
                << (p ? " pool" : " no pool");
          }
        }
      }
    }
  }
}

TEST(Gemm, SixteenBitWeightsEqualTheirFloatValues) {
  // B as stored bf16 / f16 weights (transposed, as MatMul passes them, and row-major) gives the
  // bits of the float32 product with the exactly converted values, at every level, for decode
  // (m <= 4) and prefill sizes.
  ThreadPool pool(2);
  for (GemmType type : {GemmType::kBF16, GemmType::kF16}) {
    for (const Shape s :
         {Shape{1, 37, 70}, Shape{3, 50, 33}, Shape{5, 40, 64}, Shape{30, 70, 300}}) {
      const std::vector<float> src = RandomVec(static_cast<size_t>(s.n * s.k), 51);
      std::vector<uint16_t> stored(src.size());
      std::vector<float> exact(src.size());
      for (size_t i = 0; i < src.size(); ++i) {
        stored[i] = type == GemmType::kBF16 ? F32ToBF16(src[i]) : F32ToF16(src[i]);
        exact[i] = type == GemmType::kBF16 ? BF16ToF32(stored[i]) : F16ToF32(stored[i]);
      }
      const Operand a(s.m, s.k, false, 52);
      for (bool transposed : {true, false}) {
        // transposed: stored as [n, k] (a weight); else as [k, n].
        const int64_t rs = transposed ? 1 : s.n, cs = transposed ? s.k : 1;
        std::vector<float> want(s.m * s.n);
        GemmReference(s.m, s.n, s.k, a.view, {exact.data(), rs, cs}, want.data(), s.n, false);
        for (Isa isa : Levels()) {
          std::vector<float> got(s.m * s.n);
          Gemm(s.m, s.n, s.k, a.view, {stored.data(), rs, cs, type}, got.data(), s.n, false, &pool,
               isa);
          EXPECT_TRUE(SameBits(got, want))
              << "m " << s.m << " n " << s.n << " k " << s.k << (transposed ? " transposed " : " ")
              << IsaName(isa) << (type == GemmType::kBF16 ? " bf16" : " f16");
        }
      }
    }
  }
}

TEST(Gemm, PackedRowsOfAWithPartialSteps) {
  // Rows of A 4 KiB apart (lda 1024) are packed, not read in place; k = 37 and 300 leave partial
  // 16-step blocks in the packing transpose; m = 13 leaves a 1-row panel.
  ThreadPool pool(2);
  for (int64_t k : {37, 300}) {
    const int64_t m = 13, n = 40, lda = 1024;
    const std::vector<float> a_data = RandomVec(static_cast<size_t>(m * lda), 31 + k);
    const StridedMat a{a_data.data(), lda, 1};
    const Operand b(k, n, true, 32 + k);
    std::vector<float> want(m * n);
    GemmReference(m, n, k, a, b.view, want.data(), n, false);
    for (Isa isa : Levels()) {
      std::vector<float> got(m * n);
      Gemm(m, n, k, a, b.view, got.data(), n, false, &pool, isa);
      EXPECT_TRUE(SameBits(got, want)) << "k " << k << " " << IsaName(isa);
    }
  }
}

TEST(Gemm, RowsDoNotDependOnTheOtherRows) {
  // Row i of C is the same whether A has one row or many (inference relies on it: a sequence's
  // logits do not depend on what else is in the batch).
  const int64_t m = 29, n = 300, k = 130;
  const Operand a(m, k, false, 11), b(k, n, true, 12);
  std::vector<float> all(m * n);
  Gemm(m, n, k, a.view, b.view, all.data(), n, false, nullptr);
  for (int64_t i : {0, 13, 28}) {
    std::vector<float> one(n);
    const StridedMat row{a.data.data() + i * k, k, 1};
    Gemm(1, n, k, row, b.view, one.data(), n, false, nullptr);
    EXPECT_EQ(0, std::memcmp(one.data(), &all[i * n], n * sizeof(float))) << "row " << i;
  }
}

TEST(Gemm, ReferenceAgreesWithFloat64) {
  const int64_t m = 17, n = 23, k = 1000;
  const Operand a(m, k, false, 21), b(k, n, false, 22);
  std::vector<float> c(m * n);
  GemmReference(m, n, k, a.view, b.view, c.data(), n, false);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double want = 0, scale = 0;
      for (int64_t p = 0; p < k; ++p) {
        want += double{a.view.at(i, p)} * b.view.at(p, j);
        scale += std::abs(double{a.view.at(i, p)} * b.view.at(p, j));
      }
      // A chain of k roundings: |error| <= k * 2^-24 * sum |terms| (a loose bound; typically
      // sqrt(k) of that).
      EXPECT_NEAR(c[i * n + j], want, k * 0x1p-24 * scale) << i << "," << j;
    }
  }
}

TEST(Gemm, PropagatesNonFiniteValues) {
  const int64_t m = 3, n = 40, k = 9;
  Operand a(m, k, false, 31), b(k, n, false, 32);
  a.data[1 * k + 4] = NAN;
  b.data[2 * n + 7] = INFINITY;
  for (Isa isa : Levels()) {
    std::vector<float> c(m * n);
    Gemm(m, n, k, a.view, b.view, c.data(), n, false, nullptr, isa);
    for (int64_t j = 0; j < n; ++j) EXPECT_TRUE(std::isnan(c[1 * n + j])) << IsaName(isa) << j;
    EXPECT_TRUE(std::isinf(c[0 * n + 7]) || std::isnan(c[0 * n + 7])) << IsaName(isa);
    EXPECT_TRUE(std::isfinite(c[0 * n + 6])) << IsaName(isa);
  }
}

}  // namespace
}  // namespace herd::kernels
