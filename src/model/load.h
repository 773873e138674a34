// Loading a Llama model from the files users have, with no conversion step:
//   * a Hugging Face directory: config.json, model.safetensors or sharded model-*.safetensors +
//     model.safetensors.index.json, generation_config.json (its eos ids join the stop set);
//   * Meta's original download: params.json, consolidated.NN.pth (model-parallel shards are merged
//     along each tensor's split dimension), tokenizer.model;
//   * a GGUF v3 file (tokenizer in its metadata, rope_freqs, missing output.weight = tied).
// Weights stay memory-mapped where their layout allows; see weights.h for what is normalised.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "io/tensor_index.h"
#include "model/config.h"
#include "model/weights.h"

namespace herd {

enum class ModelFormat { kHf, kMeta, kGguf };
const char* FormatName(ModelFormat f);

// Where a model's files are: `path` may be the directory, or a file inside it
// (model.safetensors, consolidated.00.pth, params.json, config.json), or a .gguf file.
struct ModelFiles {
  ModelFormat format = ModelFormat::kHf;
  std::string root;  // the directory (HF / Meta) or the .gguf file
};
Result<ModelFiles> FindModelFiles(const std::string& path);

// The config alone (cheap: no tensor data is touched), for the memory plan before loading.
Result<LlamaConfig> LoadModelConfig(const ModelFiles& files);

// Whose float arithmetic the forward pass uses: herd's own kernels (the default: SIMD, close to
// float64), or llama.cpp's CPU arithmetic reproduced operation for operation
// (kernels/ggml_numerics.h: q4_1 / q8_0 weights, f16 KV cache, plain RoPE), for output identical
// to llama.cpp's.
enum class Numerics { kHerd, kGgml };

struct Model {
  ModelFiles files;
  LlamaConfig config;
  LlamaWeights weights;
  std::vector<double> rope_inv_freq;  // [head_dim / 2], llama3 scaling applied
  std::string chat_template;          // tokenizer_config.json's / GGUF's, if any (instruct models)
  bool add_bos = true;  // plain prompts start with BOS (GGUF add_bos_token can say no)
  std::vector<std::string> warnings;  // the load-time self-check's findings, among others
  Numerics numerics = Numerics::kHerd;
};

// Why `model` cannot run with `numerics` ("" if it can): kGgml needs an AVX2 CPU, q4_1 / q8_0
// matrices, a head dim that is a multiple of 32, no RoPE scaling, and an f16 cache (cache_type).
std::string NumericsUnsupported(const Model& model, Numerics numerics, DType cache_type);

Result<Model> LoadModel(const std::string& path);

// Binds the tensors of `index` (named in `scheme`) to weights for `config`: every tensor must be
// present with the config's shape and a dtype herd computes with; errors name file and tensor.
// Unused tensors become warnings. wq / wk are permuted when `hf_rope_order`.
Status BindWeights(const LlamaConfig& config, const TensorIndex& index, NamingScheme scheme,
                   bool hf_rope_order, LlamaWeights* weights, std::vector<std::string>* warnings);

// Merges Meta model-parallel shards: column-parallel tensors (wq, wk, wv, w1, w3, output,
// tok_embeddings) are concatenated along dim 0, row-parallel ones (wo, w2) along dim 1, and
// replicated ones (norms) must be identical. The result owns the merged bytes.
Result<TensorIndex> MergeMetaShards(std::vector<TensorIndex> shards);
// The dimension Meta's model parallelism splits a tensor along: 0, 1, or -1 (replicated).
int MetaSplitDim(TensorRole role);

}  // namespace herd
