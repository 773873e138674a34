// The GGUF K-quant formats q4_K, q5_K and q6_K (kernels/kquant.h): hand-built blocks decode as
// the layouts say; DequantizeRow matches gguf-py bit for bit and QuantizeRow writes ggml's bytes
// (tests/golden/quant/kquant_golden.json, written by tools/gen_kquant_goldens.py); the round-trip
// error on Gaussian data stays below a uniform quantiser's; zero, non-finite, huge and tiny inputs
// have their defined encodings.
#include "kernels/kquant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "kernels/convert.h"
#include "kernels/quant.h"
#include "kernels_test_util.h"

namespace herd::kernels {
namespace {

using testing::Dequantize;
using testing::Quantize;
using testing::RandomVec;

constexpr DType kKTypes[] = {DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

uint16_t U16At(const std::vector<uint8_t>& q, size_t i) {
  return static_cast<uint16_t>(q[i] | q[i + 1] << 8);
}

TEST(KQuant, BlockSizesAndDispatch) {
  // ggml: q4_K = 2 + 2 + 12 + 128, q5_K = 2 + 2 + 12 + 32 + 128, q6_K = 128 + 64 + 16 + 2 bytes.
  EXPECT_EQ(Info(DType::kQ4_K).block_bytes, 144);
  EXPECT_EQ(Info(DType::kQ5_K).block_bytes, 176);
  EXPECT_EQ(Info(DType::kQ6_K).block_bytes, 210);
  for (DType t : kKTypes) {
    EXPECT_EQ(Info(t).block_size, kQK_K) << Name(t);
    EXPECT_TRUE(CanDequantize(t)) << Name(t);
    EXPECT_TRUE(CanQuantize(t)) << Name(t);
  }
}

// Blocks packed element by element from the layout description in kquant.h, independently of
// the quantiser's packing loops. Each row is two blocks; the second has its super-scales negated,
// so its values are the first's negated (checks the block stride).
void SetF16(uint8_t* p, uint16_t v) { p[0] = v & 0xff, p[1] = v >> 8; }

TEST(KQuant, HandBuiltBlocksDecodeAsTheLayoutSays) {
  ASSERT_EQ(F16ToF32(0x3800), 0.5f);
  ASSERT_EQ(F16ToF32(0x3400), 0.25f);
  ASSERT_EQ(F16ToF32(0x1400), 0x1p-10f);
  int sc[8], mn[8];  // 6-bit: sub-blocks 4..7 use the high-bit fields
  for (int s = 0; s < 8; ++s) sc[s] = 10 + 7 * s, mn[s] = 60 - 7 * s;

  for (DType t : {DType::kQ4_K, DType::kQ5_K}) {
    const bool q5 = t == DType::kQ5_K;
    const int bytes = q5 ? 176 : 144;
    auto level = [&](int e) { return q5 ? (11 * e + 5) % 32 : (7 * e + 3) % 16; };
    std::vector<uint8_t> row(2 * bytes, 0);
    uint8_t* b = row.data();
    SetF16(b, 0x3800), SetF16(b + 2, 0x3400);  // d 0.5, dmin 0.25
    for (int s = 0; s < 4; ++s) {
      b[4 + s] = static_cast<uint8_t>(sc[s] | (sc[s + 4] >> 4) << 6);
      b[8 + s] = static_cast<uint8_t>(mn[s] | (mn[s + 4] >> 4) << 6);
      b[12 + s] = static_cast<uint8_t>((sc[s + 4] & 15) | (mn[s + 4] & 15) << 4);
    }
    uint8_t* qs = b + (q5 ? 48 : 16);
    for (int e = 0; e < kQK_K; ++e) {
      const int s = e / 32, i = e % 32, q = level(e);
      qs[32 * (s / 2) + i] |= static_cast<uint8_t>((q & 15) << (4 * (s % 2)));
      if (q5) b[16 + i] |= static_cast<uint8_t>((q >> 4) << s);
    }
    std::copy(b, b + bytes, b + bytes);
    b[bytes + 1] ^= 0x80, b[bytes + 3] ^= 0x80;
    const auto y = Dequantize(t, row, 2 * kQK_K);
    for (int e = 0; e < kQK_K; ++e) {
      const int s = e / 32;
      EXPECT_EQ(y[e], 0.5f * sc[s] * level(e) - 0.25f * mn[s]) << Name(t) << " " << e;
      EXPECT_EQ(y[kQK_K + e], -y[e]) << Name(t) << " " << e;
    }
  }

  // q6_K: d 2^-10, scales -128, -111, ..., 127, levels (13 e + 7) % 64.
  std::vector<uint8_t> row(420, 0);
  uint8_t* b = row.data();
  auto level = [](int e) { return (13 * e + 7) % 64; };
  for (int s = 0; s < 16; ++s) b[192 + s] = static_cast<uint8_t>(static_cast<int8_t>(17 * s - 128));
  SetF16(b + 208, 0x1400);
  for (int e = 0; e < kQK_K; ++e) {
    const int h = e / 128, k = e % 128 / 32, i = e % 32, q = level(e);
    b[64 * h + 32 * (k & 1) + i] |= static_cast<uint8_t>((q & 15) << (k < 2 ? 0 : 4));
    b[128 + 32 * h + i] |= static_cast<uint8_t>((q >> 4) << (2 * k));
  }
  std::copy(b, b + 210, b + 210);
  b[210 + 209] ^= 0x80;
  const auto y = Dequantize(DType::kQ6_K, row, 2 * kQK_K);
  for (int e = 0; e < kQK_K; ++e) {
    EXPECT_EQ(y[e], 0x1p-10f * (17 * (e / 16) - 128) * (level(e) - 32)) << e;
    EXPECT_EQ(y[kQK_K + e], -y[e]) << e;
  }
}

std::vector<uint8_t> FromHex(const std::string& hex) {
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

nlohmann::json LoadGolden() {
  const std::string path = std::string(HERD_SOURCE_DIR) + "/tests/golden/quant/kquant_golden.json";
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  return nlohmann::json::parse(in);
}

// Bit patterns, so that the sign of a zero counts too.
void ExpectSameBits(const std::vector<float>& got, const std::vector<float>& want,
                    const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 10; ++i) {
    if (std::bit_cast<uint32_t>(got[i]) != std::bit_cast<uint32_t>(want[i])) {
      ADD_FAILURE() << what << " element " << i << ": " << got[i] << " vs " << want[i];
      ++bad;
    }
  }
}

TEST(KQuant, DequantizeMatchesGgufPyBitForBit) {
  const auto doc = LoadGolden();
  ASSERT_EQ(doc.at("block_size").get<int>(), kQK_K);
  int checked = 0;
  for (const auto& [name, f] : doc.at("formats").items()) {
    const auto t = DTypeFromName(name);
    ASSERT_TRUE(t.has_value()) << name;
    // Random, zero, extreme, subnormal-scale and negative-zero-scale blocks (see the generator).
    const auto q = FromHex(f.at("dequantize").at("blocks").get<std::string>());
    const auto want = f.at("dequantize").at("values").get<std::vector<float>>();
    ASSERT_EQ(want.size() % kQK_K, 0u);
    ExpectSameBits(Dequantize(*t, q, want.size()), want, name + " dequantize");
    // The blocks ggml's quantiser wrote.
    const auto q2 = FromHex(f.at("quantize").at("quantized").get<std::string>());
    const auto want2 = f.at("quantize").at("dequantized").get<std::vector<float>>();
    ExpectSameBits(Dequantize(*t, q2, want2.size()), want2, name + " quantize");
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

TEST(KQuant, QuantizeWritesGgmlsBytes) {
  // ggml_quantize_chunk without an importance matrix (what llama-quantize writes then), on normal,
  // offset, heavy-tailed, sparse, mixed-magnitude, tied, constant, zero and tiny blocks.
  const auto doc = LoadGolden();
  const auto x = doc.at("quantize_input").get<std::vector<float>>();
  ASSERT_EQ(x.size() % kQK_K, 0u);
  int checked = 0;
  for (const auto& [name, f] : doc.at("formats").items()) {
    const auto t = DTypeFromName(name);
    ASSERT_TRUE(t.has_value()) << name;
    const auto want = FromHex(f.at("quantize").at("quantized").get<std::string>());
    const auto q = Quantize(*t, x);
    ASSERT_EQ(q.size(), want.size()) << name;
    const size_t bb = Info(*t).block_bytes;
    for (size_t b = 0; b < x.size() / kQK_K; ++b) {
      EXPECT_TRUE(std::equal(q.begin() + b * bb, q.begin() + (b + 1) * bb, want.begin() + b * bb))
          << name << " block " << b;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

// A uniform quantiser with step D has RMS error D / sqrt(12) on data spread across its steps. Per
// sub-block, a plain min/max affine map has D = (max - min(min, 0)) / L (L = 15 for q4_K, 31 for
// q5_K; the K-quant levels always include zero), and q6_K's symmetric map D = max|x| / 32. The
// K-quant fits search for a better map than that, so their RMS error must stay below
// sqrt(mean(D^2) / 12) over the sub-blocks, even after the 6- / 8-bit rounding of the sub-block
// scales (measured: 0.88x for q4_K, 0.93x for q5_K, 0.91-0.92x for q6_K). It must not be far below
// (>= 0.8x: the bound is not vacuous), and each extra bit must about halve the error.
double UniformBound(DType t, const std::vector<float>& x) {
  const int sub = t == DType::kQ6_K ? 16 : 32;
  double sum = 0;
  for (size_t s = 0; s < x.size() / sub; ++s) {
    float lo = 0, hi = x[s * sub], amax = 0;
    for (int i = 0; i < sub; ++i) {
      const float v = x[s * sub + i];
      lo = std::min(lo, v), hi = std::max(hi, v), amax = std::max(amax, std::fabs(v));
    }
    const double d =
        t == DType::kQ6_K ? amax / 32.0 : (hi - lo) / (t == DType::kQ4_K ? 15.0 : 31.0);
    sum += d * d / 12;
  }
  return std::sqrt(sum / (x.size() / sub));
}

TEST(KQuant, RmsErrorOnGaussianDataBelowAUniformQuantisers) {
  const size_t n = kQK_K * 64;
  for (float scale : {1.0f, 0.02f, 100.0f}) {
    const auto x = RandomVec(n, 17, scale);
    double rms[3];
    for (int k = 0; k < 3; ++k) {
      const DType t = kKTypes[k];
      const auto y = Dequantize(t, Quantize(t, x), n);
      double sum = 0;
      for (size_t i = 0; i < n; ++i) sum += (static_cast<double>(y[i]) - x[i]) * (y[i] - x[i]);
      rms[k] = std::sqrt(sum / n);
      const double bound = UniformBound(t, x);
      EXPECT_LE(rms[k], bound) << Name(t) << " scale " << scale;
      EXPECT_GE(rms[k], 0.8 * bound) << Name(t) << " scale " << scale;
    }
    EXPECT_LT(rms[1], 0.6 * rms[0]) << "q5_K vs q4_K, scale " << scale;
    EXPECT_LT(rms[2], 0.6 * rms[1]) << "q6_K vs q5_K, scale " << scale;
  }
}

TEST(KQuant, AllZeroRowsEncodeAsZeroBytes) {
  // Zero scales and mins; q4_K / q5_K levels 0; q6_K's zero blocks are written as all zero bytes.
  const std::vector<float> zero(2 * kQK_K, 0.0f);
  for (DType t : kKTypes) {
    const auto q = Quantize(t, zero);
    EXPECT_EQ(q, std::vector<uint8_t>(q.size(), 0)) << Name(t);
    for (float v : Dequantize(t, q, zero.size())) EXPECT_EQ(v, 0.0f) << Name(t);
  }
}

TEST(KQuant, NonFiniteInputsAreQuantisedAsZero) {
  // Defined behaviour: NaN and +-Inf elements encode as 0 would; the rest of the block is as
  // without them, and everything decodes to finite values.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  auto x = RandomVec(2 * kQK_K, 23);
  auto zeroed = x;
  for (int i : {3, 100, 255, 300, 511}) zeroed[i] = 0;
  x[3] = nan, x[100] = inf, x[255] = -inf, x[300] = -nan, x[511] = inf;
  const std::vector<float> all_nan(kQK_K, nan);
  for (DType t : kKTypes) {
    const auto q = Quantize(t, x);
    EXPECT_EQ(q, Quantize(t, zeroed)) << Name(t);
    for (float v : Dequantize(t, q, x.size())) EXPECT_TRUE(std::isfinite(v)) << Name(t);
    const auto qn = Quantize(t, all_nan);
    EXPECT_EQ(qn, std::vector<uint8_t>(qn.size(), 0)) << Name(t);
  }
}

TEST(KQuant, HugeValuesSaturateTheSuperScaleAtTheLargestF16) {
  // ggml would store an infinite f16 scale (and decode inf / NaN); herd saturates at 65504, so
  // the block decodes to finite (clipped) values. Includes +-FLT_MAX, where the fits' float sums
  // overflow.
  auto x = RandomVec(kQK_K, 29, 1e9f);
  x[7] = FLT_MAX, x[200] = -FLT_MAX;
  for (DType t : kKTypes) {
    const auto q = Quantize(t, x);
    for (float v : Dequantize(t, q, x.size())) EXPECT_TRUE(std::isfinite(v)) << Name(t);
    const uint16_t d = U16At(q, t == DType::kQ6_K ? 208 : 0);
    EXPECT_EQ(d & 0x7fff, 0x7bff) << Name(t);  // +-65504
  }
}

TEST(KQuant, Float32SubnormalBlocksDecodeToZero) {
  // The inverse scales overflow (q4_K / q5_K) or the block is below q6_K's 1e-15 threshold; the
  // f16 super-scales round to 0.
  std::vector<float> x(kQK_K);
  for (int i = 0; i < kQK_K; ++i) x[i] = (i % 7 - 3) * 1e-40f;
  for (DType t : kKTypes) {
    for (float v : Dequantize(t, Quantize(t, x), x.size())) EXPECT_EQ(v, 0.0f) << Name(t);
  }
}

TEST(KQuantDeathTest, RowLengthMustBeAMultipleOf256) {
  std::vector<float> x(kQK_K + 32, 1.0f);
  std::vector<uint8_t> q(1024);
  for (DType t : kKTypes) {
    EXPECT_DEATH(QuantizeRow(t, x.data(), kQK_K + 32, q.data()), "CHECK failed") << Name(t);
    EXPECT_DEATH(DequantizeRow(t, q.data(), 128, x.data()), "CHECK failed") << Name(t);
  }
}

}  // namespace
}  // namespace herd::kernels
