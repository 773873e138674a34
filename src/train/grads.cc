#include "train/grads.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "kernels/quant.h"

namespace herd {

LlamaGrads MakeGrads(const LlamaConfig& c) {
  LlamaGrads g;
  g.layers.resize(c.n_layers);
  g.tied = c.tie_word_embeddings;
  ForEachTensor(g, [&](TensorId id, GradTensor& t) {
    t.shape = ExpectedShape(c, id.role);
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    t.data.assign(n, 0.0f);
  });
  return g;
}

double GlobalNorm(const LlamaGrads& grads) {
  double ss = 0;
  ForEachTensor(grads, [&](TensorId, const GradTensor& t) {
    for (float x : t.data) ss += static_cast<double>(x) * x;
  });
  return std::sqrt(ss);
}

Result<Model> MakeTrainableModel(const LlamaConfig& config, const LlamaWeights& weights,
                                 ThreadPool* pool) {
  HERD_RETURN_IF_ERROR(config.Validate("config"));
  Model m;
  m.config = config;
  m.rope_inv_freq = RopeInverseFrequencies(config);
  LlamaWeights& w = m.weights;
  w.layers.resize(config.n_layers);
  w.tied = config.tie_word_embeddings;
  // Source tensors in the same visiting order (weights.tied must match the config).
  if (weights.tied != w.tied || weights.layers.size() != w.layers.size())
    return Status::Error("weights do not match the config (layers or tied output)");
  std::vector<const Weight*> src;
  ForEachTensor(weights, [&](TensorId, const Weight& t) { src.push_back(&t); });
  size_t i = 0;
  Status status = Status::Ok();
  ForEachTensor(w, [&](TensorId id, Weight& t) {
    const Weight& s = *src[i++];
    t.shape = ExpectedShape(config, id.role);
    t.dtype = DType::kF32;
    if (s.shape != t.shape || !kernels::CanDequantize(s.dtype)) {
      if (status.ok()) status = Status::Errorf("tensor {}: unexpected shape or dtype", i - 1);
      return;
    }
    auto bytes = std::make_shared<AlignedFloats>(t.numel());
    const int64_t rows = t.rows(), cols = t.cols();
    const kernels::MatView view = s.mat();
    auto convert = [&](size_t r, int) {
      kernels::DequantizeRow(s.dtype, view.row(r), cols, bytes->data() + r * cols);
    };
    ParallelFor(pool, static_cast<size_t>(rows), convert);
    t.data = reinterpret_cast<const uint8_t*>(bytes->data());
    w.storage.push_back(std::move(bytes));
  });
  HERD_RETURN_IF_ERROR(status);
  if (w.tied) w.output = w.tok_embeddings;
  return m;
}

}  // namespace herd
