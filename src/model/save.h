// Writing a model in each format herd reads (for `herd init`, `herd quantize` and training
// checkpoints): a Hugging Face directory (config.json, generation_config.json, model.safetensors,
// tokenizer.json, tokenizer_config.json), Meta's layout (params.json, consolidated.NN.pth,
// tokenizer.model) or one GGUF v3 file with the tokenizer in its metadata.
#pragma once

#include <string>

#include "base/status.h"
#include "model/load.h"
#include "tokenizer/tokenizer.h"

namespace herd {

struct SaveOptions {
  ModelFormat format = ModelFormat::kHf;
  DType dtype = DType::kBF16;        // matrices; GGUF keeps norms in f32, as llama.cpp does
  int meta_shards = 1;               // Meta format: model-parallel shards to split into
  std::string tokenizer_model_path;  // tiktoken tokenizer.model copied into Meta directories
                                     // (empty: written from the tokenizer data)
  std::string chat_template;         // Jinja template for tokenizer_config.json / GGUF
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
