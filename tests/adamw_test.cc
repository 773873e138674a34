// kernels/adamw.h: every ISA level computes the scalar definition's bits (weights and moments),
// for lengths around the vector widths, and the scalar definition agrees with the update in double.
#include "kernels/adamw.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels_test_util.h"

namespace herd::kernels {
namespace {

using testing::Levels;
using testing::RandomVec;

// The constants of step t of AdamW(lr, betas 0.9 / 0.95, eps 1e-8, weight decay 0.1).
AdamWConstants Constants(double lr, int t, bool decay) {
  const double b1 = 0.9, b2 = 0.95;
  AdamWConstants k;
  k.b1 = static_cast<float>(b1), k.c1 = static_cast<float>(1 - b1);
  k.b2 = static_cast<float>(b2), k.c2 = static_cast<float>(1 - b2);
  k.inv_bc2 = static_cast<float>(1 / std::sqrt(1 - std::pow(b2, t)));
  k.eps = 1e-8f, k.step = static_cast<float>(lr / (1 - std::pow(b1, t)));
  k.decay = decay ? static_cast<float>(1 - lr * 0.1) : 1.0f;
  return k;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

TEST(AdamW, EveryLevelEqualsScalarBitForBit) {
  for (int64_t n : {0, 1, 7, 8, 9, 15, 16, 17, 33, 1000}) {
    const size_t size = static_cast<size_t>(n);
    const std::vector<float> w0 = RandomVec(size, 1 + n);
    std::vector<float> m0 = RandomVec(size, 2 + n, 1e-3f), v0 = RandomVec(size, 3 + n, 1e-3f);
    std::vector<float> g = RandomVec(size, 4 + n, 1e-2f);
    for (float& x : v0) x = x * x;                          // second moments are >= 0
    if (n > 8) g[3] = m0[3] = v0[3] = 0.0f, g[5] = 1e-30f;  // zero moments: d = eps, no update
    for (int t : {1, 7}) {
      for (bool decay : {false, true}) {
        const AdamWConstants k = Constants(3e-3, t, decay);
        std::vector<float> want_w = w0, want_m = m0, want_v = v0;
        AdamWUpdate(k, g.data(), want_w.data(), want_m.data(), want_v.data(), n, Isa::kScalar);
        for (Isa isa : Levels()) {
          std::vector<float> w = w0, m = m0, v = v0;
          AdamWUpdate(k, g.data(), w.data(), m.data(), v.data(), n, isa);
          EXPECT_TRUE(SameBits(w, want_w) && SameBits(m, want_m) && SameBits(v, want_v))
              << "n " << n << " t " << t << " decay " << decay << " " << IsaName(isa);
        }
        // The definition against the update in double: float32 rounding only.
        for (int64_t i = 0; i < n; ++i) {
          const double mi = 0.9 * m0[i] + 0.1 * double{g[i]};
          const double vi = 0.95 * v0[i] + 0.05 * double{g[i]} * g[i];
          const double lr = 3e-3, bc1 = 1 - std::pow(0.9, t), bc2 = 1 - std::pow(0.95, t);
          const double w = w0[i] * (decay ? 1 - lr * 0.1 : 1.0) -
                           lr / bc1 * mi / (std::sqrt(vi) / std::sqrt(bc2) + 1e-8);
          // Bounds relative to the terms' magnitudes (m's two terms may cancel).
          const double update = std::abs(w - w0[i]);
          EXPECT_NEAR(want_m[i], mi, 1e-6 * (std::abs(m0[i]) + std::abs(g[i]))) << i;
          EXPECT_NEAR(want_v[i], vi, 1e-6 * vi) << i;
          EXPECT_NEAR(want_w[i], w, 1e-6 * (std::abs(w0[i]) + update)) << i;
        }
      }
    }
    // Clipping's factor scales g first (g * grad_scale, rounded once): every level, the scalar
    // bits.
    AdamWConstants k = Constants(3e-3, 3, true);
    k.grad_scale = 0.37f;
    std::vector<float> scaled = g;
    for (float& x : scaled) x *= k.grad_scale;
    std::vector<float> want_w = w0, want_m = m0, want_v = v0;
    AdamWUpdate(Constants(3e-3, 3, true), scaled.data(), want_w.data(), want_m.data(),
                want_v.data(), n, Isa::kScalar);
    for (Isa isa : Levels()) {
      std::vector<float> w = w0, m = m0, v = v0, grad = g;
      AdamWUpdate(k, grad.data(), w.data(), m.data(), v.data(), n, isa);
      EXPECT_TRUE(SameBits(w, want_w) && SameBits(m, want_m) && SameBits(v, want_v))
          << "n " << n << " scaled, " << IsaName(isa);
      EXPECT_TRUE(SameBits(grad, g)) << "n " << n << IsaName(isa);  // read only
    }
  }
}

TEST(AdamW, AddPartsEveryLevelEqualsScalar) {
  for (int64_t n : {0, 1, 7, 8, 9, 15, 16, 17, 24, 33, 1000}) {
    for (int n_parts : {0, 1, 2}) {
      const size_t size = static_cast<size_t>(n);
      const std::vector<float> g0 = RandomVec(size, 5 + n);
      std::vector<std::vector<float>> parts0;
      for (int p = 0; p < n_parts; ++p) parts0.push_back(RandomVec(size, 6 + n + p));
      // The definition, written out: the parts added in order, the squares summed in double.
      std::vector<float> want = g0;
      for (const auto& part : parts0)
        for (size_t i = 0; i < size; ++i) want[i] += part[i];
      double exact = 0;
      for (float x : want) exact += double{x} * x;
      for (bool squares : {false, true}) {
        double scalar_sum = 0;
        for (Isa isa : Levels()) {
          std::vector<float> g = g0;
          std::vector<std::vector<float>> parts = parts0;
          std::vector<const float*> ptrs;
          for (auto& part : parts) ptrs.push_back(part.data());
          const double sum = AddParts(g.data(), ptrs, n, squares, isa);
          if (isa == Isa::kScalar) scalar_sum = sum;
          EXPECT_TRUE(SameBits(g, want)) << "n " << n << " " << IsaName(isa);
          for (int p = 0; p < n_parts; ++p) EXPECT_TRUE(SameBits(parts[p], parts0[p]));
          EXPECT_EQ(sum, scalar_sum) << "n " << n << " parts " << n_parts << " " << IsaName(isa);
          EXPECT_NEAR(sum, squares ? exact : 0.0, 1e-12 * exact) << "n " << n << IsaName(isa);
        }
      }
    }
  }
}

}  // namespace
}  // namespace herd::kernels
