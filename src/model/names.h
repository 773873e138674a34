// One name table for the three naming schemes of Llama weights (cf. llama.cpp's llama-arch.cpp):
//   HF transformers        Meta llama-models            GGUF (llama.cpp)
//   model.embed_tokens     tok_embeddings               token_embd
//   model.layers.N.self_attn.q_proj  layers.N.attention.wq  blk.N.attn_q        (k, v, o alike)
//   model.layers.N.mlp.gate_proj     layers.N.feed_forward.w1  blk.N.ffn_gate   (w3 = up, w2 =
//   down)
//   ...input_layernorm / post_attention_layernorm  attention_norm / ffn_norm  attn_norm / ffn_norm
//   model.norm, lm_head    norm, output                 output_norm, output (+ rope_freqs)
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herd {

enum class NamingScheme { kHf, kMeta, kGguf };
const char* SchemeName(NamingScheme s);

enum class TensorRole {
  kTokEmbedding,  // [vocab, dim]
  kNorm,          // [dim] final RMSNorm
  kOutput,        // [vocab, dim] (absent when tied)
  kRopeFreqs,     // [head_dim / 2] GGUF only: llama3 scaling divisors
  kAttnNorm,      // [dim]
  kWq,            // [n_heads * head_dim, dim]
  kWk,            // [n_kv_heads * head_dim, dim]
  kWv,            // [n_kv_heads * head_dim, dim]
  kWo,            // [dim, n_heads * head_dim]
  kFfnNorm,       // [dim]
  kW1,            // gate [ffn_dim, dim]
  kW2,            // down [dim, ffn_dim]
  kW3,            // up   [ffn_dim, dim]
};

struct TensorId {
  TensorRole role;
  int layer = -1;  // -1 for model-level tensors
  bool operator==(const TensorId&) const = default;
};

bool IsLayerRole(TensorRole role);
// The tensor's name in a scheme; empty when the scheme has no such tensor (rope_freqs outside
// GGUF).
std::string TensorName(NamingScheme scheme, TensorId id);
// Inverse of TensorName; nullopt for names that are not Llama weights in that scheme.
std::optional<TensorId> ParseTensorName(NamingScheme scheme, std::string_view name);
// Which scheme a list of tensor names uses, from its embedding tensor's name.
std::optional<NamingScheme> DetectScheme(const std::vector<std::string_view>& names);

}  // namespace herd
