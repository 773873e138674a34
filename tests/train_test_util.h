// Helpers of the training tests: the formula weights of tools/gen_train_goldens.py (so goldens need
// not store weights) and the golden file's configs.
#pragma once

#include <cmath>
#include <cstdint>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/weights.h"
#include "test_util.h"

namespace herd::testing {

inline uint64_t SplitMix64(uint64_t x) {
  uint64_t z = x + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Tensor number n of gen_train_goldens.py's formula: matrices float32(u / sqrt(cols)), vectors
// float32(1 + u / 4), u = ((h >> 48) - 32768) / 32768, h = splitmix64((seed << 48) ^ (n << 32) ^
// i).
inline std::vector<float> FormulaTensor(uint64_t seed, uint64_t n,
                                        const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  std::vector<float> out(count);
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t h = SplitMix64((seed << 48) ^ (n << 32) ^ static_cast<uint64_t>(i));
    const double u = (static_cast<double>(h >> 48) - 32768.0) / 32768.0;
    out[i] = shape.size() == 1 ? static_cast<float>(1.0 + u / 4.0)
                               : static_cast<float>(u / std::sqrt(static_cast<double>(shape[1])));
  }
  return out;
}

// Float32 weights for `c` from the formula, tensors numbered in ForEachTensor order.
inline LlamaWeights FormulaWeights(const LlamaConfig& c, uint64_t seed) {
  LlamaWeights w;
  w.layers.resize(c.n_layers);
  w.tied = c.tie_word_embeddings;
  uint64_t n = 0;
  ForEachTensor(w, [&](TensorId id, Weight& t) {
    t.shape = ExpectedShape(c, id.role);
    t.dtype = DType::kF32;
    auto data = std::make_shared<std::vector<float>>(FormulaTensor(seed, n++, t.shape));
    t.data = reinterpret_cast<const uint8_t*>(data->data());
    w.storage.push_back(data);
  });
  if (w.tied) w.output = w.tok_embeddings;
  return w;
}

// A config object of train_grads.json.
inline LlamaConfig ConfigFromGolden(const nlohmann::json& j) {
  LlamaConfig c;
  c.dim = j["dim"], c.n_layers = j["n_layers"], c.n_heads = j["n_heads"];
  c.n_kv_heads = j["n_kv_heads"], c.head_dim = j["head_dim"], c.ffn_dim = j["ffn_dim"];
  c.vocab_size = j["vocab_size"], c.norm_eps = j["norm_eps"], c.rope_theta = j["rope_theta"];
  c.tie_word_embeddings = j["tie_word_embeddings"];
  if (!j["rope_scaling"].is_null()) {
    const auto& s = j["rope_scaling"];
    c.rope_scaling = RopeScaling{s["factor"], s["low_freq_factor"], s["high_freq_factor"],
                                 s["original_max_position_embeddings"]};
  }
  c.max_seq_len = 4096;
  return c;
}

inline nlohmann::json LoadTrainGolden() {
  std::ifstream f(SourcePath("tests/golden/train_grads.json"));
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::json::parse(ss.str());
}

}  // namespace herd::testing
