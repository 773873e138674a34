// Writing a model in each format herd reads (for `herd init`, `herd quantize` and training
// checkpoints): a Hugging Face directory (config.json, generation_config.json, model.safetensors,
// tokenizer.json, tokenizer_config.json), Meta's layout (params.json, consolidated.NN.pth,
// tokenizer.model) or one GGUF v3 file with the tokenizer in its metadata.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "model/load.h"
#include "tokenizer/tokenizer.h"

namespace herd {

class ThreadPool;

// What SaveModel has converted so far (reported after each tensor).
struct SaveProgress {
  int tensors_done = 0, n_tensors = 0;
  std::string_view name;  // the tensor just converted, in the output's naming scheme
  DType dtype = DType::kF32;
  uint64_t elements_done = 0, elements_total = 0;
  uint64_t bytes_done = 0, bytes_total = 0;  // output bytes
};

struct SaveOptions {
  ModelFormat format = ModelFormat::kHf;
  DType dtype = DType::kBF16;        // matrices; GGUF keeps norms in f32, as llama.cpp does
  int meta_shards = 1;               // Meta format: model-parallel shards to split into
  std::string tokenizer_model_path;  // tiktoken tokenizer.model copied into Meta directories
                                     // (empty: written from the tokenizer data)
  std::string chat_template;         // Jinja template for tokenizer_config.json / GGUF
  // GGUF only: the dtype of each matrix (2-D tensor) instead of `dtype`; its block must divide
  // the rows. Empty: `dtype` for all.
  std::function<DType(TensorId id, const std::vector<int64_t>& shape)> tensor_dtype;
  // GGUF general.file_type (llama.cpp's llama_ftype); -1: the file type of `dtype`.
  int64_t gguf_file_type = -1;
  ThreadPool* pool = nullptr;                         // converts rows in parallel when set
  std::function<void(const SaveProgress&)> progress;  // called after each tensor when set
};

// Writes to `out` (a directory for HF / Meta, a file for GGUF). Tensors are converted to
// options.dtype; wq / wk rows are written in the format's RoPE order.
// `tokenizer` may be null (test models without one): no tokenizer files are written.
Status SaveModel(const LlamaConfig& config, const LlamaWeights& weights,
                 const TokenizerData* tokenizer, const SaveOptions& options,
                 const std::string& out);

// A tiktoken BPE file ("<base64 bytes> <rank>" per line) for a tokenizer whose ranks are its ids,
// as Llama 3's are; the trailing control tokens are left out (Llama 3 appends its 256 specials).
Result<std::string> TiktokenModelFile(const TokenizerData& tokenizer);

}  // namespace herd
