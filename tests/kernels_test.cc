// Kernels against float64 math written out in the test: conversions (exhaustive over all 16-bit
// patterns), block quantisation round trips with the error bound of each format, MatMul for every
// weight dtype, and the per-row ops.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "kernels_test_util.h"

namespace herd::kernels {
namespace {

using testing::RandomVec;

// float64 value of an f16 bit pattern, from the definition.
double F16Exact(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
  double v = exp == 0 ? std::ldexp(mant, -24) : std::ldexp(1024 + mant, exp - 25);
  if (exp == 31) v = mant ? NAN : INFINITY;
  return sign ? -v : v;
}

TEST(Convert, F16ToF32MatchesDefinitionForAllPatterns) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const double want = F16Exact(static_cast<uint16_t>(h));
    const float got = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << h;
    } else {
      EXPECT_EQ(static_cast<double>(got), want) << h;
      EXPECT_EQ(std::signbit(got), (h >> 15) != 0) << h;
    }
  }
}

TEST(Convert, F16RoundTripAndNearestEven) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(f))));
      continue;
    }
    EXPECT_EQ(F32ToF16(f), h) << h;
  }
  // Random floats: the result is the nearest f16 (ties to even), checked against neighbours.
  std::mt19937 rng(1);
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = rng();
    float f;
    std::memcpy(&f, &bits, 4);
    if (std::isnan(f) || std::fabs(f) > 65504) continue;
    const uint16_t h = F32ToF16(f);
    const double got = F16Exact(h), err = std::fabs(got - f);
    for (int d : {-1, 1}) {
      const uint16_t n = static_cast<uint16_t>(h + d);
      if (((n >> 10) & 31) == 31 || ((h & 0x7fff) == 0 && d < 0)) continue;
      const double other = std::fabs(F16Exact(n) - f);
      EXPECT_TRUE(err < other || (err == other && (h & 1) == 0)) << f << " -> " << h;
    }
  }
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);  // halfway to 2^16: rounds to even = inf
  EXPECT_EQ(F32ToF16(-1e30f), 0xfc00);
}

TEST(Convert, BF16IsTopHalfRoundedToNearestEven) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = BF16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(F32ToBF16(f), h);
  }
  auto bits = [](uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  };
  EXPECT_EQ(F32ToBF16(bits(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(F32ToBF16(bits(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(F32ToBF16(bits(0x3f808001u)), 0x3f81);
  EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(NAN))));
}

TEST(Quant, BlockLayoutsDecodeAsSpecified) {
  // q8_0: scale 0.5 (f16 0x3800), q[j] = j - 16.
  uint8_t q8[34];
  q8[0] = 0x00, q8[1] = 0x38;
  for (int j = 0; j < 32; ++j) q8[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 16));
  float out[32];
  DequantizeRow(DType::kQ8_0, q8, 32, out);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(out[j], 0.5f * (j - 16));
  // q4_0: scale 2 (0x4000); byte j = lo (j) | hi (15 - j).
  uint8_t q4[18];
  q4[0] = 0x00, q4[1] = 0x40;
  for (int j = 0; j < 16; ++j) q4[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  DequantizeRow(DType::kQ4_0, q4, 32, out);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 2.0f * (j - 8));
    EXPECT_EQ(out[j + 16], 2.0f * (15 - j - 8));
  }
}

TEST(Quant, RoundTripErrorWithinFormatBound) {
  const int n = 32 * 64;
  const auto x = RandomVec(n, 7, 0.02f);
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    std::vector<uint8_t> buf(*BytesFor(t, n));
    std::vector<float> y(n);
    QuantizeRow(t, x.data(), n, buf.data());
    DequantizeRow(t, buf.data(), n, y.data());
    for (int b = 0; b < n / 32; ++b) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
      for (int j = 0; j < 32; ++j) {
        const float xi = x[b * 32 + j], err = std::fabs(y[b * 32 + j] - xi);
        // Half a quantisation step, plus the f16 rounding of the block scale (2^-11 relative).
        // q4_0 spans [-8d, 7d] with -8d at the extreme value, so values of the opposite sign
        // near amax are clipped to 7d: up to one full step (amax / 8).
        float bound = 0;
        if (t == DType::kF16) bound = std::fabs(xi) * 0x1p-11f + 0x1p-25f;
        if (t == DType::kBF16) bound = std::fabs(xi) * 0x1p-8f;
        if (t == DType::kQ8_0) bound = amax / 127 * 0.5f + amax * 0x1p-10f;
        if (t == DType::kQ4_0) bound = amax / 8 + amax * 0x1p-9f;
        EXPECT_LE(err, bound) << Name(t) << " block " << b << " elem " << j;
      }
    }
  }
}

TEST(Quant, Q4_0UsesTheLargestMagnitudeAsMinusEight) {
  std::vector<float> x(32, 0.1f);
  x[5] = -3.0f;
  uint8_t buf[18];
  QuantizeRow(DType::kQ4_0, x.data(), 32, buf);
  float y[32];
  DequantizeRow(DType::kQ4_0, buf, 32, y);
  EXPECT_FLOAT_EQ(y[5], -3.0f);
  std::vector<float> zero(32, 0.0f);
  QuantizeRow(DType::kQ4_0, zero.data(), 32, buf);
  DequantizeRow(DType::kQ4_0, buf, 32, y);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(Ops, RMSNormSwiGLUSoftmax) {
  const auto x = RandomVec(64, 5), w = RandomVec(64, 6);
  std::vector<float> out(64);
  RMSNorm(x.data(), w.data(), 64, 1e-5f, out.data());
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  for (int i = 0; i < 64; ++i)
    EXPECT_NEAR(out[i], x[i] / std::sqrt(ss / 64 + 1e-5) * w[i], 1e-5 * std::fabs(out[i]) + 1e-7);

  std::vector<float> g = x;
  SwiGLU(g.data(), w.data(), 64);
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(g[i], x[i] / (1 + std::exp(-double(x[i]))) * w[i], 1e-6);

  std::vector<float> s = {1.0f, 2.0f, -INFINITY, 3.0f};
  Softmax(s.data(), 4);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(s[0], std::exp(1.0) / z, 1e-7);
  EXPECT_EQ(s[2], 0.0f);
  EXPECT_NEAR(s[3], std::exp(3.0) / z, 1e-7);
}

TEST(Ops, RopeRotatesInterleavedPairs) {
  const int n_heads = 2, head_dim = 8;
  auto x = RandomVec(n_heads * head_dim, 8);
  const auto orig = x;
  std::vector<float> c(4), s(4);
  for (int i = 0; i < 4; ++i) c[i] = std::cos(0.3 * (i + 1)), s[i] = std::sin(0.3 * (i + 1));
  RopeInterleaved(x.data(), n_heads, head_dim, c.data(), s.data());
  for (int h = 0; h < n_heads; ++h) {
    for (int i = 0; i < 4; ++i) {
      const double a = orig[h * 8 + 2 * i], b = orig[h * 8 + 2 * i + 1], th = 0.3 * (i + 1);
      EXPECT_NEAR(x[h * 8 + 2 * i], a * std::cos(th) - b * std::sin(th), 1e-6);
      EXPECT_NEAR(x[h * 8 + 2 * i + 1], a * std::sin(th) + b * std::cos(th), 1e-6);
    }
  }
}

// float64 attention of query token t (at position start + t), head h, over k / v given as floats.
std::vector<double> AttentionReference(const std::vector<float>& q, const std::vector<float>& k,
                                       const std::vector<float>& v, const AttentionShape& s,
                                       int start, int t, int h) {
  const int d = s.head_dim, kvh = h / (s.n_heads / s.n_kv_heads), n_keys = start + t + 1;
  const int q_stride = s.n_heads * d, kv_stride = s.n_kv_heads * d;
  std::vector<double> p(n_keys), out(d, 0.0);
  double max = -1e300, sum = 0;
  for (int j = 0; j < n_keys; ++j) {
    double dot = 0;
    for (int i = 0; i < d; ++i)
      dot += double(q[t * q_stride + h * d + i]) * k[j * kv_stride + kvh * d + i];
    p[j] = dot / std::sqrt(double(d));
    max = std::max(max, p[j]);
  }
  for (double& e : p) sum += (e = std::exp(e - max));
  for (int j = 0; j < n_keys; ++j)
    for (int i = 0; i < d; ++i) out[i] += p[j] / sum * v[j * kv_stride + kvh * d + i];
  return out;
}

TEST(Attention, CausalGqaMatchesFloat64) {
  const AttentionShape shape{4, 2, 8};
  const int start = 3, n_tok = 4, n_pos = start + n_tok;
  const auto q = RandomVec(n_tok * 32, 9), k = RandomVec(n_pos * 16, 10),
             v = RandomVec(n_pos * 16, 11);
  std::vector<float> out(n_tok * 32);
  ThreadPool pool(2);
  Attention(q.data(), k.data(), v.data(), n_tok, start, shape, out.data(), &pool);
  for (int t = 0; t < n_tok; ++t) {
    for (int h = 0; h < 4; ++h) {
      const auto want = AttentionReference(q, k, v, shape, start, t, h);
      for (int i = 0; i < 8; ++i)
        EXPECT_NEAR(out[t * 32 + h * 8 + i], want[i], 1e-5) << t << " " << h << " " << i;
    }
  }
}

// More query heads per kv head than are processed together (multi-query attention, 32:1).
TEST(Attention, LargeGroupsAreSplit) {
  const AttentionShape shape{32, 1, 8};
  const int start = 5, n_tok = 2, n_pos = start + n_tok;
  const auto q = RandomVec(n_tok * 256, 15), k = RandomVec(n_pos * 8, 16),
             v = RandomVec(n_pos * 8, 17);
  std::vector<float> out(n_tok * 256);
  Attention(q.data(), k.data(), v.data(), n_tok, start, shape, out.data(), nullptr);
  for (int t = 0; t < n_tok; ++t) {
    for (int h = 0; h < 32; ++h) {
      const auto want = AttentionReference(q, k, v, shape, start, t, h);
      for (int i = 0; i < 8; ++i) EXPECT_NEAR(out[t * 256 + h * 8 + i], want[i], 1e-5) << t << h;
    }
  }
}

// The streaming softmax over many key tiles (a growing maximum forces rescaling), every KV cache
// element type and every ISA level: equal to float64 attention over the keys and values as the
// cache rounded them.
TEST(Attention, StreamingSoftmaxEveryCacheTypeAndLevel) {
  // Llama 3's group of 4 with head_dim 64 and 128, one head per kv head, a group of 8 with
  // head_dim 48, and a head_dim (40) the AVX-512 kernel hands to the AVX2 one.
  for (const AttentionShape shape :
       {AttentionShape{8, 2, 64}, AttentionShape{8, 2, 128}, AttentionShape{4, 4, 32},
        AttentionShape{16, 2, 48}, AttentionShape{4, 1, 40}}) {
    const int d = shape.head_dim, q_dim = shape.n_heads * d, kv_dim = shape.n_kv_heads * d;
    const int start = 290, n_tok = 3, n_pos = start + n_tok;
    auto q = RandomVec(n_tok * q_dim, 12, 0.5f);
    auto k = RandomVec(n_pos * kv_dim, 13), v = RandomVec(n_pos * kv_dim, 14);
    for (int j = 0; j < n_pos; ++j) k[j * kv_dim] += 0.05f * j;  // later keys score higher
    for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
      std::vector<uint8_t> kc(*BytesFor(dtype, k.size())), vc(kc.size());
      QuantizeRow(dtype, k.data(), k.size(), kc.data());
      QuantizeRow(dtype, v.data(), v.size(), vc.data());
      std::vector<float> kr(k.size()), vr(v.size());  // what the cache holds, as floats
      DequantizeRow(dtype, kc.data(), k.size(), kr.data());
      DequantizeRow(dtype, vc.data(), v.size(), vr.data());
      const KVRows rows{dtype, kc.data(), vc.data(), kv_dim};
      for (int level = 0; level <= static_cast<int>(BestIsa(DetectCpu())); ++level) {
        const Isa isa = static_cast<Isa>(level);
        std::vector<float> out(n_tok * q_dim);
        ThreadPool pool(2);
        Attention(q.data(), rows, n_tok, start, shape, out.data(), &pool, isa);
        for (int t = 0; t < n_tok; ++t) {
          for (int h = 0; h < shape.n_heads; ++h) {
            const auto want = AttentionReference(q, kr, vr, shape, start, t, h);
            for (int i = 0; i < d; ++i)
              ASSERT_NEAR(out[t * q_dim + h * d + i], want[i], 2e-5)
                  << Name(dtype) << " " << IsaName(isa) << " d" << d << " t" << t << " h" << h
                  << " i" << i;
          }
        }
      }
    }
  }
}

// AVX-512 prefill runs blocks of tokens per kv head (keys and values converted once per block):
// every token's output is the same bits as when it runs alone (the decode path), across block
// boundaries, key tiles and causal ends inside a tile.
TEST(Attention, TokenBlocksEqualSingleTokens) {
  if (BestIsa(DetectCpu()) < Isa::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  const AttentionShape shape{8, 2, 64};
  const int d = shape.head_dim, q_dim = shape.n_heads * d, kv_dim = shape.n_kv_heads * d;
  const int start = 70, n_tok = 37, n_pos = start + n_tok;
  const auto q = RandomVec(n_tok * q_dim, 21, 0.5f);
  const auto k = RandomVec(n_pos * kv_dim, 22), v = RandomVec(n_pos * kv_dim, 23);
  std::vector<uint8_t> kc(*BytesFor(DType::kF16, k.size())), vc(kc.size());
  QuantizeRow(DType::kF16, k.data(), k.size(), kc.data());
  QuantizeRow(DType::kF16, v.data(), v.size(), vc.data());
  const KVRows rows{DType::kF16, kc.data(), vc.data(), kv_dim};
  std::vector<float> blocked(n_tok * q_dim), single(n_tok * q_dim);
  ThreadPool pool(2);
  Attention(q.data(), rows, n_tok, start, shape, blocked.data(), &pool, Isa::kAvx512);
  for (int t = 0; t < n_tok; ++t) {
    Attention(q.data() + t * q_dim, rows, 1, start + t, shape, single.data() + t * q_dim, nullptr,
              Isa::kAvx512);
  }
  EXPECT_EQ(std::memcmp(blocked.data(), single.data(), blocked.size() * 4), 0);
}

}  // namespace
}  // namespace herd::kernels
