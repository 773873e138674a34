// LlamaConfig: the hyper-parameters of a Llama 3 / 3.1 / 3.2 text model, with Meta's field names,
// read from whichever file a download has: HF config.json, Meta params.json, or GGUF metadata.
// Nothing is hard-coded per model size; presets give the published shapes for `herd init`.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace herd {

namespace gguf {
class File;
}

// Llama 3.1's "llama3" RoPE frequency scaling (HF rope_scaling.rope_type == "llama3").
struct RopeScaling {
  double factor = 8.0;  // 8 for Llama 3.1, 32 for Llama 3.2
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
};

struct LlamaConfig {
  int dim = 0;         // model width (HF hidden_size)
  int n_layers = 0;    // HF num_hidden_layers
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // key/value heads (GQA: n_heads % n_kv_heads == 0)
  int head_dim = 0;    // dim / n_heads unless the config says otherwise
  int ffn_dim = 0;     // SwiGLU hidden width (HF intermediate_size)
  int vocab_size = 0;
  double norm_eps = 1e-5;
  double rope_theta = 500000.0;
  std::optional<RopeScaling> rope_scaling;  // absent: plain RoPE (Llama 3)
  bool tie_word_embeddings = false;         // 3.2 1B/3B: output projection = token embedding
  int max_seq_len = 8192;                   // context the model was trained for
  int bos_id = -1;
  std::vector<int> eos_ids;
  std::vector<std::string> warnings;  // accepted, but the user should hear about it

  // Checks ranges and divisibility; the message names `source`.
  Status Validate(const std::string& source) const;
  // One line, e.g. "dim 2048, 16 layers, 32 heads (8 kv, head_dim 64), ffn 8192, vocab 128256,
  // ...".
  std::string Describe() const;
};

Result<LlamaConfig> ParseHfConfig(std::string_view json_text, const std::string& source);
// params.json. Meta's files give the FFN width as multiple_of / ffn_dim_multiplier and say only
// use_scaled_rope; the scaling factor is read from "rope_scaling" when herd wrote the file, else 8
// (Meta's reference value) — with a warning for 3.2-shaped models, whose factor is 32.
Result<LlamaConfig> ParseMetaParams(std::string_view json_text, const std::string& source);
Result<LlamaConfig> ConfigFromGguf(const gguf::File& file);

// Meta's FFN width rule: 2/3 of 4*dim, times ffn_dim_multiplier, rounded up to a multiple of
// multiple_of.
int MetaFfnDim(int dim, int multiple_of, std::optional<double> ffn_dim_multiplier);

// RoPE inverse frequencies theta^(-2i/head_dim), i < head_dim/2, with llama3 scaling applied if
// set. Computed in double; the scaling follows Meta's apply_scaling (with the factor from the
// config).
std::vector<double> RopeInverseFrequencies(const LlamaConfig& config);

// Published shapes: llama3-8b, llama3.1-8b, llama3.2-1b, llama3.2-3b; test shapes: tiny, tiny-tied.
Result<LlamaConfig> PresetConfig(std::string_view name);
std::vector<std::string> PresetNames();

}  // namespace herd
