// Training attention (kernels/backward.h CausalAttention, AttentionBackward): against float64
// loops of the definition, on shapes around the micro-tiles, the 128-query blocks and GQA groups;
// every ISA level computes the same bits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/backward.h"
#include "kernels_test_util.h"

namespace herd::kernels {
namespace {

using testing::Levels;
using testing::RandomVec;

struct Case {
  int n, d, heads, kv_heads, start;
};

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Probabilities of head h, query t (position start + t) over keys [0, start + t], in double.
std::vector<double> Probs(const Case& c, const std::vector<float>& q, const std::vector<float>& k,
                          int h, int t) {
  const int group = c.heads / c.kv_heads, kv = h / group, keys = c.start + t + 1;
  const double scale = 1.0 / std::sqrt(double{c.d});
  std::vector<double> p(keys);
  double max = -INFINITY, sum = 0;
  for (int j = 0; j < keys; ++j) {
    double dot = 0;
    for (int i = 0; i < c.d; ++i)
      dot += double{q[(t * c.heads + h) * c.d + i]} * k[(j * c.kv_heads + kv) * c.d + i];
    p[j] = dot * scale, max = std::max(max, p[j]);
  }
  for (double& x : p) sum += x = std::exp(x - max);
  for (double& x : p) x /= sum;
  return p;
}

TEST(TrainAttention, ForwardMatchesFloat64AndLevelsAgree) {
  // {20, 128, 8, 2, 0}: rows of q 1024 floats apart (4 KiB), which the micro-kernels get packed;
  // {1024, 8, 1, 1, 0}: a block of 1024 keys, whose probability rows are padded off 4 KiB.
  const Case cases[] = {{1, 8, 1, 1, 0},    {5, 16, 2, 1, 0},   {13, 32, 4, 2, 3},
                        {40, 48, 3, 1, 0},  {130, 32, 4, 2, 0}, {150, 16, 2, 2, 70},
                        {20, 128, 8, 2, 0}, {1024, 8, 1, 1, 0}};
  for (const Case& c : cases) {
    const int keys = c.start + c.n;
    const auto q = RandomVec(size_t(c.n) * c.heads * c.d, 1 + c.n);
    const auto k = RandomVec(size_t(keys) * c.kv_heads * c.d, 2 + c.n);
    const auto v = RandomVec(size_t(keys) * c.kv_heads * c.d, 3 + c.n);
    const AttentionShape shape{c.heads, c.kv_heads, c.d};
    std::vector<float> first;
    for (Isa isa : Levels()) {
      std::vector<float> out(q.size(), NAN);
      for (int kv = 0; kv < c.kv_heads; ++kv)
        CausalAttention(q.data(), k.data(), v.data(), int64_t{c.kv_heads} * c.d, c.n, c.start,
                        shape, kv, out.data(), isa);
      if (first.empty()) first = out;
      EXPECT_TRUE(SameBits(out, first)) << "n " << c.n << " " << IsaName(isa);
    }
    const int group = c.heads / c.kv_heads;
    for (int t = 0; t < c.n; ++t) {
      for (int h = 0; h < c.heads; ++h) {
        const std::vector<double> p = Probs(c, q, k, h, t);
        for (int i = 0; i < c.d; ++i) {
          double want = 0;
          for (size_t j = 0; j < p.size(); ++j)
            want += p[j] * v[(j * c.kv_heads + h / group) * c.d + i];
          ASSERT_NEAR(first[(t * c.heads + h) * c.d + i], want, 2e-5)
              << "n " << c.n << " t " << t << " h " << h << " i " << i;
        }
      }
    }
  }
}

TEST(TrainAttention, BackwardMatchesFloat64AndLevelsAgree) {
  const Case cases[] = {{1, 8, 1, 1, 0},    {5, 16, 2, 1, 0},   {13, 32, 4, 2, 0},
                        {40, 48, 3, 1, 0},  {130, 32, 4, 2, 0}, {270, 16, 2, 2, 0},
                        {20, 128, 8, 2, 0}, {1024, 8, 1, 1, 0}};
  for (const Case& c : cases) {
    const size_t q_size = size_t(c.n) * c.heads * c.d, kv_size = size_t(c.n) * c.kv_heads * c.d;
    const auto q = RandomVec(q_size, 11 + c.n), k = RandomVec(kv_size, 12 + c.n);
    const auto v = RandomVec(kv_size, 13 + c.n), dout = RandomVec(q_size, 14 + c.n);
    const AttentionShape shape{c.heads, c.kv_heads, c.d};
    const int64_t kv_stride = int64_t{c.kv_heads} * c.d;
    std::vector<float> out(q_size);
    for (int kv = 0; kv < c.kv_heads; ++kv)
      CausalAttention(q.data(), k.data(), v.data(), kv_stride, c.n, 0, shape, kv, out.data());
    std::vector<float> dq0, dk0, dv0;
    for (Isa isa : Levels()) {
      std::vector<float> dq(q_size, NAN), dk(kv_size, NAN), dv(kv_size, NAN);
      for (int kv = 0; kv < c.kv_heads; ++kv)
        AttentionBackward(q.data(), k.data(), v.data(), out.data(), dout.data(), c.n, shape, kv,
                          dq.data(), dk.data(), dv.data(), isa);
      if (dq0.empty()) dq0 = dq, dk0 = dk, dv0 = dv;
      EXPECT_TRUE(SameBits(dq, dq0) && SameBits(dk, dk0) && SameBits(dv, dv0))
          << "n " << c.n << " " << IsaName(isa);
    }
    // The definition in double.
    const int group = c.heads / c.kv_heads;
    const double scale = 1.0 / std::sqrt(double{c.d});
    std::vector<double> dq(q_size), dk(kv_size), dv(kv_size);
    for (int h = 0; h < c.heads; ++h) {
      const int kv = h / group;
      for (int t = 0; t < c.n; ++t) {
        const std::vector<double> p = Probs(c, q, k, h, t);
        const float* go = &dout[(t * c.heads + h) * c.d];
        std::vector<double> dp(p.size());
        double dt = 0;
        for (size_t j = 0; j < p.size(); ++j) {
          for (int i = 0; i < c.d; ++i) dp[j] += double{go[i]} * v[(j * c.kv_heads + kv) * c.d + i];
          dt += p[j] * dp[j];
        }
        for (size_t j = 0; j < p.size(); ++j) {
          const double ds = p[j] * (dp[j] - dt) * scale;
          for (int i = 0; i < c.d; ++i) {
            dq[(t * c.heads + h) * c.d + i] += ds * k[(j * c.kv_heads + kv) * c.d + i];
            dk[(j * c.kv_heads + kv) * c.d + i] += ds * q[(t * c.heads + h) * c.d + i];
            dv[(j * c.kv_heads + kv) * c.d + i] += p[j] * go[i];
          }
        }
      }
    }
    for (size_t i = 0; i < q_size; ++i)
      ASSERT_NEAR(dq0[i], dq[i], 1e-4) << "dq n " << c.n << " " << i;
    for (size_t i = 0; i < kv_size; ++i) {
      ASSERT_NEAR(dk0[i], dk[i], 1e-4) << "dk n " << c.n << " " << i;
      ASSERT_NEAR(dv0[i], dv[i], 1e-4) << "dv n " << c.n << " " << i;
    }
  }
}

}  // namespace
}  // namespace herd::kernels
