// Helpers shared by the kernel tests: seeded Gaussian inputs, whole-row (de)quantisation and the
// ISA levels this CPU can run.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "base/cpu.h"
#include "base/dtype.h"
#include "kernels/quant.h"

namespace herd::kernels::testing {

// Every level from scalar up to the best this CPU has (kernels are tested at each).
inline std::vector<Isa> Levels() {
  std::vector<Isa> levels;
  for (int i = 0; i <= static_cast<int>(BestIsa(DetectCpu())); ++i)
    levels.push_back(static_cast<Isa>(i));
  return levels;
}

// n samples of N(offset, scale^2) from mt19937(seed).
inline std::vector<float> RandomVec(size_t n, uint32_t seed, float scale = 1.0f,
                                    float offset = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(offset, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// x as one row of dtype t (x.size() a multiple of the block size).
inline std::vector<uint8_t> Quantize(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(*BytesFor(t, x.size()));
  QuantizeRow(t, x.data(), static_cast<int64_t>(x.size()), q.data());
  return q;
}

// The n floats of a row of dtype t.
inline std::vector<float> Dequantize(DType t, const std::vector<uint8_t>& q, size_t n) {
  EXPECT_EQ(q.size(), *BytesFor(t, n));
  std::vector<float> y(n);
  DequantizeRow(t, q.data(), static_cast<int64_t>(n), y.data());
  return y;
}

}  // namespace herd::kernels::testing
