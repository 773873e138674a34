// LlamaWeights: every tensor of a Llama model as a view in its storage dtype, plus the storage the
// views point into (memory-mapped files, or buffers when a tensor had to be rearranged). One
// visitor, ForEachTensor, walks them in a fixed order for load, save, init and (later) gradients
// and the optimizer.
//
// Layout conventions, whatever the file format:
//   * matrices are [out_features, in_features], row-major (y = W x);
//   * wq / wk rows are in Meta's interleaved-pairs RoPE order (rows 2i, 2i+1 of a head rotate
//     together); Hugging Face files (rotate-half order) are permuted at load;
//   * 1-D tensors (norms) are float32.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/dtype.h"
#include "kernels/matmul.h"
#include "kernels/qgemm.h"
#include "model/config.h"
#include "model/names.h"

namespace herd {

struct Weight {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // PyTorch order: [rows, cols] or [n]
  const uint8_t* data = nullptr;
  // The matrix repacked for the integer GEMM (PackForInference), if it was.
  std::shared_ptr<const kernels::PackedMat> packed;

  int64_t rows() const { return shape.size() == 2 ? shape[0] : 1; }
  int64_t cols() const { return shape.empty() ? 0 : shape.back(); }
  int64_t numel() const { return rows() * cols(); }
  uint64_t n_bytes() const { return *BytesFor(dtype, static_cast<uint64_t>(numel())); }
  kernels::MatView mat() const {
    kernels::MatView v = kernels::MakeMatView(dtype, rows(), cols(), data);
    v.packed = packed.get();
    return v;
  }
  const float* f32() const { return reinterpret_cast<const float*>(data); }
};

struct LayerWeights {
  Weight attn_norm;  // [dim]
  Weight wq;         // [n_heads * head_dim, dim]
  Weight wk;         // [n_kv_heads * head_dim, dim]
  Weight wv;         // [n_kv_heads * head_dim, dim]
  Weight wo;         // [dim, n_heads * head_dim]
  Weight ffn_norm;   // [dim]
  Weight w1;         // gate: [ffn_dim, dim]
  Weight w2;         // down: [dim, ffn_dim]
  Weight w3;         // up:   [ffn_dim, dim]
};

struct LlamaWeights {
  Weight tok_embeddings;  // [vocab, dim]
  std::vector<LayerWeights> layers;
  Weight norm;    // [dim]
  Weight output;  // [vocab, dim]; a copy of the tok_embeddings view when tied
  bool tied = false;
  // Keeps mapped files and owned buffers alive for the views above.
  std::vector<std::shared_ptr<const void>> storage;

  // Total bytes of distinct tensors (a tied output counts once).
  uint64_t TotalBytes() const;
};

// Repacks the block-quantised matrices that kernels/qgemm.h multiplies (q8_0, q4_0, q4_K, q6_K)
// for inference, and releases the file pages of the originals, which inference then no longer
// reads (the token embedding's rows are looked up in the packed copy, kernels::UnpackRow; a tied
// output shares it). $HERD_PACK=0 turns packing off. Returns the bytes packed.
uint64_t PackForInference(LlamaWeights* w, ThreadPool* pool);

// The shape a config gives each tensor (PyTorch order).
std::vector<int64_t> ExpectedShape(const LlamaConfig& config, TensorRole role);

// Calls fn(TensorId, Weight&) for every tensor: tok_embeddings, then per layer attn_norm, wq, wk,
// wv, wo, ffn_norm, w1, w2, w3, then norm, then output unless tied.
template <typename Weights, typename Fn>
void ForEachTensor(Weights& w, Fn&& fn) {
  fn(TensorId{TensorRole::kTokEmbedding}, w.tok_embeddings);
  for (int i = 0; i < static_cast<int>(w.layers.size()); ++i) {
    auto& l = w.layers[i];
    fn(TensorId{TensorRole::kAttnNorm, i}, l.attn_norm);
    fn(TensorId{TensorRole::kWq, i}, l.wq);
    fn(TensorId{TensorRole::kWk, i}, l.wk);
    fn(TensorId{TensorRole::kWv, i}, l.wv);
    fn(TensorId{TensorRole::kWo, i}, l.wo);
    fn(TensorId{TensorRole::kFfnNorm, i}, l.ffn_norm);
    fn(TensorId{TensorRole::kW1, i}, l.w1);
    fn(TensorId{TensorRole::kW2, i}, l.w2);
    fn(TensorId{TensorRole::kW3, i}, l.w3);
  }
  fn(TensorId{TensorRole::kNorm}, w.norm);
  if (!w.tied) fn(TensorId{TensorRole::kOutput}, w.output);
}

// Row permutations between the two RoPE layouts of wq / wk (any dtype: whole rows move).
// Hugging Face's conversion puts, within each head, the even rows of Meta's layout first and the
// odd rows second ("rotate half"): hf row p * head_dim/2 + i = meta row 2i + p.
std::vector<uint8_t> PermuteRowsHfToMeta(const Weight& w, int n_heads);
std::vector<uint8_t> PermuteRowsMetaToHf(const Weight& w, int n_heads);

}  // namespace herd
