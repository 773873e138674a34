// LlamaGrads: a float32 gradient for every tensor of LlamaWeights, with the same member names, so
// the one ForEachTensor visitor (model/weights.h) walks weights and gradients in the same order.
// When the output projection is tied to the token embedding its gradient is added to
// tok_embeddings' and `output` stays empty (ForEachTensor skips it).
#pragma once

#include <cstdint>
#include <vector>

#include "base/aligned.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "model/config.h"
#include "model/load.h"
#include "model/weights.h"

namespace herd {

struct GradTensor {
  std::vector<int64_t> shape;  // as the weight's (PyTorch order)
  AlignedFloats data;          // row-major, numel() floats

  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  float* f32() { return data.data(); }
  const float* f32() const { return data.data(); }
};

struct LayerGrads {
  GradTensor attn_norm, wq, wk, wv, wo, ffn_norm, w1, w2, w3;
};

struct LlamaGrads {
  GradTensor tok_embeddings;
  std::vector<LayerGrads> layers;
  GradTensor norm, output;
  bool tied = false;
};

// Zeros with the config's shapes.
LlamaGrads MakeGrads(const LlamaConfig& config);
// sqrt(sum of squares of every element), summed in double tensor by tensor in ForEachTensor order
// (deterministic).
double GlobalNorm(const LlamaGrads& grads);

// A model for training: float32 copies of `weights` (any dtype herd reads) in buffers the model
// owns, so the optimizer may write them (MutableF32), a tied output sharing the embedding's.
Result<Model> MakeTrainableModel(const LlamaConfig& config, const LlamaWeights& weights,
                                 ThreadPool* pool);
// The float32 data of a weight whose storage the caller owns (MakeTrainableModel's).
inline float* MutableF32(const Weight& w) { return const_cast<float*>(w.f32()); }

}  // namespace herd
