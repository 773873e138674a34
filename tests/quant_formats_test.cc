// The GGUF block formats q4_1, q5_0 and q5_1 (and, against gguf-py, q4_0 and q8_0): hand-built
// blocks decode as ggml's layouts say, round trips stay within each format's error bound,
// requantising a dequantised row gives back the same bytes, constant blocks, MatMul over the new
// dtypes, and bit-exact agreement with gguf.quants (tests/golden/quant/quant_golden.json, written
// by tools/gen_quant_goldens.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/thread_pool.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "kernels_test_util.h"

namespace herd::kernels {
namespace {

using testing::Dequantize;
using testing::Quantize;
using testing::RandomVec;

constexpr DType kNewTypes[] = {DType::kQ4_1, DType::kQ5_0, DType::kQ5_1};
constexpr DType kBlockTypes[] = {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                                 DType::kQ8_0};

TEST(QuantFormats, BlockSizesAreGgmls) {
  // ggml: q4_1 = 2 + 2 + 16, q5_0 = 2 + 4 + 16, q5_1 = 2 + 2 + 4 + 16 bytes per 32 elements.
  EXPECT_EQ(Info(DType::kQ4_1).block_size, 32);
  EXPECT_EQ(Info(DType::kQ4_1).block_bytes, 20);
  EXPECT_EQ(Info(DType::kQ5_0).block_size, 32);
  EXPECT_EQ(Info(DType::kQ5_0).block_bytes, 22);
  EXPECT_EQ(Info(DType::kQ5_1).block_size, 32);
  EXPECT_EQ(Info(DType::kQ5_1).block_bytes, 24);
  for (DType t : kBlockTypes) {
    EXPECT_TRUE(CanDequantize(t)) << Name(t);
    EXPECT_TRUE(CanQuantize(t)) << Name(t);
  }
}

// Nibble bytes shared by the hand-built blocks: byte j = j (low, element j) | 15 - j (high,
// element j + 16).
void PutNibbles(uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
}

// The high bits of the hand-built q5 blocks: bytes 01 80 04 c0 = little-endian u32 0xc0048001,
// bits 0, 15, 18, 30, 31, so elements 0, 15, 18, 30 and 31 get 16 added to their nibble.
constexpr uint8_t kQh[4] = {0x01, 0x80, 0x04, 0xc0};
// The 5-bit values those blocks hold, element by element.
constexpr int kQ5[32] = {16, 1,  2,  3,  4,  5,  6, 7, 8, 9, 10, 11, 12, 13, 14, 31,
                         15, 14, 29, 12, 11, 10, 9, 8, 7, 6, 5,  4,  3,  2,  17, 16};

TEST(QuantFormats, HandBuiltBlocksDecodeAsTheLayoutSays) {
  // Scales and minimums exactly representable in f16.
  ASSERT_EQ(F16ToF32(0x3800), 0.5f);
  ASSERT_EQ(F16ToF32(0xc280), -3.25f);
  ASSERT_EQ(F16ToF32(0x3400), 0.25f);
  ASSERT_EQ(F16ToF32(0xb400), -0.25f);
  ASSERT_EQ(F16ToF32(0x3000), 0.125f);
  ASSERT_EQ(F16ToF32(0x3e00), 1.5f);
  ASSERT_EQ(F16ToF32(0xbe00), -1.5f);

  // Each row is two blocks; the second has d and m negated, so its values are the first's negated
  // (checks the block stride).
  // q4_1: d 0.5, m -3.25: x = 0.5 * q - 3.25 with q = j for element j < 16, 15 - j for j + 16.
  uint8_t q41[40] = {0x00, 0x38, 0x80, 0xc2};
  PutNibbles(q41 + 4);
  std::copy(q41, q41 + 20, q41 + 20);
  q41[21] ^= 0x80, q41[23] ^= 0x80;
  float out[64];
  DequantizeRow(DType::kQ4_1, q41, 64, out);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 0.5f * j - 3.25f) << j;
    EXPECT_EQ(out[j + 16], 0.5f * (15 - j) - 3.25f) << j;
  }
  for (int j = 0; j < 32; ++j) EXPECT_EQ(out[32 + j], -out[j]) << j;

  // q5_0: d 0.25: x = 0.25 * (q - 16).
  uint8_t q50[44] = {0x00, 0x34, kQh[0], kQh[1], kQh[2], kQh[3]};
  PutNibbles(q50 + 6);
  std::copy(q50, q50 + 22, q50 + 22);
  q50[23] ^= 0x80;
  DequantizeRow(DType::kQ5_0, q50, 64, out);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(out[j], 0.25f * (kQ5[j] - 16)) << j;
    EXPECT_EQ(out[32 + j], -0.25f * (kQ5[j] - 16)) << j;
  }

  // q5_1: d 0.125, m 1.5: x = 0.125 * q + 1.5.
  uint8_t q51[48] = {0x00, 0x30, 0x00, 0x3e, kQh[0], kQh[1], kQh[2], kQh[3]};
  PutNibbles(q51 + 8);
  std::copy(q51, q51 + 24, q51 + 24);
  q51[25] ^= 0x80, q51[27] ^= 0x80;
  DequantizeRow(DType::kQ5_1, q51, 64, out);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(out[j], 0.125f * kQ5[j] + 1.5f) << j;
    EXPECT_EQ(out[32 + j], -(0.125f * kQ5[j] + 1.5f)) << j;
  }

  // The q4_1 block's values span its levels 0 (-3.25) to 15 (4.25), so the quantiser recovers
  // d = 7.5 / 15 and m exactly and writes the same bytes back.
  std::vector<float> x(32);
  DequantizeRow(DType::kQ4_1, q41, 32, x.data());
  EXPECT_EQ(Quantize(DType::kQ4_1, x), std::vector<uint8_t>(q41, q41 + 20));
}

// Largest |error| allowed for x[j] after a round trip through t, from the format (amax, min, max:
// of x's block). The f16 rounding of a scale or minimum s is at most |s| * 2^-11 (normal range).
float ErrorBound(DType t, const float* block, int j) {
  float amax = 0, min = block[0], max = block[0];
  for (int i = 0; i < 32; ++i) {
    amax = std::max(amax, std::fabs(block[i]));
    min = std::min(min, block[i]), max = std::max(max, block[i]);
  }
  const float slop = 0x1p-18f;  // float32 rounding in x * id + c and in the dequantised value
  switch (t) {
    case DType::kQ4_1:
    case DType::kQ5_1: {
      // q = round-half-up((x - min) / d) is the nearest of levels min + d * [0, L] spanning
      // exactly [min, max]: error <= d / 2. The stored d and m are f16: + L * d * 2^-11 for d
      // (q <= L), + |min| * 2^-11 for m.
      const float levels = t == DType::kQ4_1 ? 15 : 31;
      const float d = (max - min) / levels;
      return d * (0.5f + levels * 0x1p-11f + slop) + std::fabs(min) * 0x1p-11f + amax * slop;
    }
    case DType::kQ5_0: {
      // Levels d * [-16, 15] with d = max / -16: the element of largest magnitude is exactly
      // -16 d. Values of the other sign beyond 15.5 |d| clip to 15 d: error up to |d|; all others
      // are within half a step. Plus the f16 rounding of d, times |q - 16| <= 16.
      const float d = amax / 16;
      const float sign_of_max = [&] {
        for (int i = 0; i < 32; ++i)
          if (std::fabs(block[i]) == amax) return std::copysign(1.0f, block[i]);
        return 1.0f;
      }();
      const bool clipped = block[j] * sign_of_max < -15.5f * d * (1 - 0x1p-16f);
      return d * ((clipped ? 1.0f : 0.5f) + 16 * 0x1p-11f + slop) + amax * slop;
    }
    default:
      ADD_FAILURE() << "no bound for " << Name(t);
      return 0;
  }
}

TEST(QuantFormats, RoundTripErrorWithinFormatBound) {
  const int n = 32 * 64;
  // Centred data at two scales, and data offset from zero (where the min of q4_1 / q5_1 matters).
  const std::vector<std::vector<float>> inputs = {RandomVec(n, 7), RandomVec(n, 8, 0.02f),
                                                  RandomVec(n, 9, 1.0f, 5.0f)};
  for (DType t : kNewTypes) {
    for (const auto& x : inputs) {
      const auto y = Dequantize(t, Quantize(t, x), n);
      float worst = 0;  // the largest error as a fraction of its bound
      for (int b = 0; b < n / 32; ++b) {
        for (int j = 0; j < 32; ++j) {
          const int i = b * 32 + j;
          const float bound = ErrorBound(t, &x[b * 32], j);
          EXPECT_LE(std::fabs(y[i] - x[i]), bound) << Name(t) << " block " << b << " elem " << j;
          worst = std::max(worst, std::fabs(y[i] - x[i]) / bound);
        }
      }
      // The bound is not vacuous: random data comes close to half a step somewhere.
      EXPECT_GT(worst, 0.8f) << Name(t);
    }
  }
}

TEST(QuantFormats, RequantisingADequantisedRowGivesTheSameBytes) {
  // Dequantised values lie exactly on the levels, and the block's extremes are levels 0 and L
  // (q4_1 / q5_1: min at q 0, max at q L) or the level of largest magnitude (-8 / -16 / 127 times
  // d), so the requantiser recomputes the stored f16 d and m exactly (d * q is exact in float32
  // and, for data of ordinary range, so is m + d * L) and rounds every value to its own level.
  const int n = 32 * 64;
  for (DType t : kBlockTypes) {
    for (const auto& x : {RandomVec(n, 11), RandomVec(n, 12, 0.02f), RandomVec(n, 13, 1.0f, 5.0f),
                          RandomVec(n, 14, 1.0f, -40.0f)}) {
      const auto q = Quantize(t, x);
      const auto y = Dequantize(t, q, n);
      EXPECT_EQ(Quantize(t, y), q) << Name(t);
    }
  }
}

TEST(QuantFormats, AllZeroBlocks) {
  const std::vector<float> zero(64, 0.0f);
  // q4_1 / q5_1: min = max = 0, so d = m = 0 and every q is 0: all bytes zero.
  EXPECT_EQ(Quantize(DType::kQ4_1, zero), std::vector<uint8_t>(40, 0));
  EXPECT_EQ(Quantize(DType::kQ5_1, zero), std::vector<uint8_t>(48, 0));
  // q5_0: ggml's d = max / -16 with max = 0 is -0 (f16 0x8000), and each q is 16 (value 0): nibble
  // 0, high bit set.
  std::vector<uint8_t> q50(44, 0);
  for (int b = 0; b < 2; ++b) {
    q50[22 * b + 1] = 0x80;
    std::fill_n(q50.begin() + 22 * b + 2, 4, 0xff);
  }
  EXPECT_EQ(Quantize(DType::kQ5_0, zero), q50);
  for (DType t : kBlockTypes) {
    for (float v : Dequantize(t, Quantize(t, zero), 64)) EXPECT_EQ(v, 0.0f) << Name(t);
  }
}

TEST(QuantFormats, AllEqualBlocks) {
  // q4_1 / q5_1: d = 0 and q = 0, so every element decodes to m = f16(c). q5_0: the one value is
  // the largest magnitude, q = 0 (-16 d) everywhere, decoding to -16 * f16(c / -16). Exact when
  // c / 16 is an f16 value (-2.5); the f16 rounding otherwise (0.3).
  for (float c : {-2.5f, 0.3f}) {
    const std::vector<float> x(32, c);
    const float m = F16ToF32(F32ToF16(c));
    const float q50 = -16 * F16ToF32(F32ToF16(c / -16));
    for (DType t : kNewTypes) {
      const auto q = Quantize(t, x);
      const float want = t == DType::kQ5_0 ? q50 : m;
      for (float v : Dequantize(t, q, 32)) EXPECT_EQ(v, want) << Name(t) << " c " << c;
      if (c == -2.5f) {
        EXPECT_EQ(want, c);
      }
      // The level bytes (after d, m and qh) are all zero.
      const int head = t == DType::kQ4_1 ? 4 : t == DType::kQ5_0 ? 6 : 8;
      for (size_t i = head; i < q.size(); ++i) EXPECT_EQ(q[i], 0) << Name(t) << " byte " << i;
    }
  }
}

TEST(QuantFormats, BlocksBelowTheF16RangeDecodeToZeroOrTheirSmallestLevel) {
  // float32 subnormals: d is so small that 1 / d overflows to infinity, and x * id is +-inf or
  // (0 * inf) NaN. The levels stay defined (no out-of-range float -> int conversion, which is
  // undefined behaviour in C++) and the stored f16 scale rounds to 0, so the block decodes to
  // values no larger than the smallest f16 subnormal (2^-24).
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = (i % 7 - 3) * 1e-40f;
  for (DType t : kBlockTypes) {
    for (float v : Dequantize(t, Quantize(t, x), 64)) {
      EXPECT_TRUE(std::isfinite(v)) << Name(t);
      EXPECT_LE(std::fabs(v), 0x1p-24f) << Name(t);
    }
  }
}

std::vector<uint8_t> FromHex(const std::string& hex) {
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

TEST(QuantFormats, MatchesGgufPyBitForBit) {
  const std::string path = std::string(HERD_SOURCE_DIR) + "/tests/golden/quant/quant_golden.json";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  const auto doc = nlohmann::json::parse(in);
  ASSERT_EQ(doc.at("block_size").get<int>(), 32);
  int checked = 0;
  for (const auto& [name, f] : doc.at("formats").items()) {
    const auto t = DTypeFromName(name);
    ASSERT_TRUE(t.has_value()) << name;
    // Floats in the file are float32 values (the generator checks they parse back exactly).
    const auto x = f.at("input").get<std::vector<float>>();
    const auto want_y = f.at("dequantized").get<std::vector<float>>();
    const auto want_q = FromHex(f.at("quantized").get<std::string>());
    ASSERT_EQ(x.size(), want_y.size()) << name;
    ASSERT_EQ(x.size() % 32, 0u) << name;
    ASSERT_EQ(want_q.size(), *BytesFor(*t, x.size())) << name;

    const auto q = Quantize(*t, x);
    const size_t block_bytes = Info(*t).block_bytes;
    for (size_t b = 0; b < x.size() / 32; ++b) {
      EXPECT_TRUE(std::equal(q.begin() + b * block_bytes, q.begin() + (b + 1) * block_bytes,
                             want_q.begin() + b * block_bytes))
          << name << " block " << b;
    }
    const auto y = Dequantize(*t, want_q, x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      // Bit patterns, so that the sign of a zero counts too.
      EXPECT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(want_y[i]))
          << name << " element " << i << ": " << y[i] << " vs " << want_y[i];
    }
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

}  // namespace
}  // namespace herd::kernels
