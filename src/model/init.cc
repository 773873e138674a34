#include "model/init.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/quant.h"

namespace herd {
namespace {

constexpr double kStd = 0.02;

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform in (0, 1): 53 random bits, never 0 (log(0) below).
double Uniform(uint64_t* state) { return ((SplitMix64(state) >> 11) + 0.5) * 0x1p-53; }

// Box-Muller, both outputs used.
void FillNormal(uint64_t stream, float* out, int64_t n) {
  uint64_t state = stream;
  for (int64_t i = 0; i < n; i += 2) {
    const double r = std::sqrt(-2.0 * std::log(Uniform(&state))) * kStd;
    const double theta = 2.0 * M_PI * Uniform(&state);
    out[i] = static_cast<float>(r * std::cos(theta));
    if (i + 1 < n) out[i + 1] = static_cast<float>(r * std::sin(theta));
  }
}

uint64_t StreamSeed(uint64_t seed, TensorId id, int64_t row) {
  uint64_t s = seed;
  SplitMix64(&s);
  s ^= (static_cast<uint64_t>(id.role) << 56) ^ (static_cast<uint64_t>(id.layer + 1) << 40) ^
       static_cast<uint64_t>(row);
  return SplitMix64(&s);
}

}  // namespace

Result<LlamaWeights> InitRandomWeights(const LlamaConfig& c, DType dtype, uint64_t seed,
                                       ThreadPool* pool) {
  if (!kernels::CanQuantize(dtype))
    return Status::Errorf("cannot initialise weights in {}", Name(dtype));
  HERD_RETURN_IF_ERROR(c.Validate("config"));
  if (c.dim % Info(dtype).block_size || c.ffn_dim % Info(dtype).block_size ||
      (c.n_heads * c.head_dim) % Info(dtype).block_size)
    return Status::Errorf("{} needs every row length to be a multiple of {}", Name(dtype),
                          Info(dtype).block_size);
  LlamaWeights w;
  w.layers.resize(c.n_layers);
  w.tied = c.tie_word_embeddings;
  ForEachTensor(w, [&](TensorId id, Weight& t) {
    t.shape = ExpectedShape(c, id.role);
    const bool is_norm = t.shape.size() == 1;
    t.dtype = is_norm ? DType::kF32 : dtype;
    auto bytes = std::make_shared<std::vector<uint8_t>>(t.n_bytes());
    t.data = bytes->data();
    if (is_norm) {
      std::vector<float> ones(t.numel(), 1.0f);
      std::memcpy(bytes->data(), ones.data(), bytes->size());
    } else {
      const int64_t rows = t.rows(), cols = t.cols();
      const uint64_t row_bytes = t.n_bytes() / rows;
      auto fill = [&](size_t r, int) {
        thread_local std::vector<float> row;
        row.resize(cols);
        FillNormal(StreamSeed(seed, id, static_cast<int64_t>(r)), row.data(), cols);
        kernels::QuantizeRow(t.dtype, row.data(), cols, bytes->data() + r * row_bytes);
      };
      if (pool) {
        pool->ParallelFor(rows, fill);
      } else {
        for (int64_t r = 0; r < rows; ++r) fill(r, 0);
      }
    }
    w.storage.push_back(std::move(bytes));
  });
  if (w.tied) w.output = w.tok_embeddings;
  return w;
}

}  // namespace herd
