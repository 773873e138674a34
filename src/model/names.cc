#include "model/names.h"

#include <array>
#include <charconv>

namespace herd {

namespace {

struct Row {
  TensorRole role;
  std::array<const char*, 3> names;  // HF, Meta, GGUF; "{}" stands for the layer number
};

constexpr Row kTable[] = {
    {TensorRole::kTokEmbedding,
     {"model.embed_tokens.weight", "tok_embeddings.weight", "token_embd.weight"}},
    {TensorRole::kNorm, {"model.norm.weight", "norm.weight", "output_norm.weight"}},
    {TensorRole::kOutput, {"lm_head.weight", "output.weight", "output.weight"}},
    {TensorRole::kRopeFreqs, {"", "", "rope_freqs.weight"}},
    {TensorRole::kAttnNorm,
     {"model.layers.{}.input_layernorm.weight", "layers.{}.attention_norm.weight",
      "blk.{}.attn_norm.weight"}},
    {TensorRole::kWq,
     {"model.layers.{}.self_attn.q_proj.weight", "layers.{}.attention.wq.weight",
      "blk.{}.attn_q.weight"}},
    {TensorRole::kWk,
     {"model.layers.{}.self_attn.k_proj.weight", "layers.{}.attention.wk.weight",
      "blk.{}.attn_k.weight"}},
    {TensorRole::kWv,
     {"model.layers.{}.self_attn.v_proj.weight", "layers.{}.attention.wv.weight",
      "blk.{}.attn_v.weight"}},
    {TensorRole::kWo,
     {"model.layers.{}.self_attn.o_proj.weight", "layers.{}.attention.wo.weight",
      "blk.{}.attn_output.weight"}},
    {TensorRole::kFfnNorm,
     {"model.layers.{}.post_attention_layernorm.weight", "layers.{}.ffn_norm.weight",
      "blk.{}.ffn_norm.weight"}},
    {TensorRole::kW1,
     {"model.layers.{}.mlp.gate_proj.weight", "layers.{}.feed_forward.w1.weight",
      "blk.{}.ffn_gate.weight"}},
    {TensorRole::kW2,
     {"model.layers.{}.mlp.down_proj.weight", "layers.{}.feed_forward.w2.weight",
      "blk.{}.ffn_down.weight"}},
    {TensorRole::kW3,
     {"model.layers.{}.mlp.up_proj.weight", "layers.{}.feed_forward.w3.weight",
      "blk.{}.ffn_up.weight"}},
};

const char* Pattern(NamingScheme scheme, TensorRole role) {
  for (const Row& r : kTable)
    if (r.role == role) return r.names[static_cast<int>(scheme)];
  return "";
}

}  // namespace

const char* SchemeName(NamingScheme s) {
  switch (s) {
    case NamingScheme::kHf:
      return "hf";
    case NamingScheme::kMeta:
      return "meta";
    case NamingScheme::kGguf:
      return "gguf";
  }
  return "?";
}

bool IsLayerRole(TensorRole role) {
  return role != TensorRole::kTokEmbedding && role != TensorRole::kNorm &&
         role != TensorRole::kOutput && role != TensorRole::kRopeFreqs;
}

std::string TensorName(NamingScheme scheme, TensorId id) {
  std::string p = Pattern(scheme, id.role);
  const size_t at = p.find("{}");
  if (at != std::string::npos) p.replace(at, 2, std::to_string(id.layer));
  return p;
}

std::optional<TensorId> ParseTensorName(NamingScheme scheme, std::string_view name) {
  for (const Row& r : kTable) {
    const std::string_view p = r.names[static_cast<int>(scheme)];
    if (p.empty()) continue;
    const size_t at = p.find("{}");
    if (at == std::string_view::npos) {
      if (name == p) return TensorId{r.role, -1};
      continue;
    }
    const std::string_view prefix = p.substr(0, at), suffix = p.substr(at + 2);
    if (name.size() <= prefix.size() + suffix.size() || name.substr(0, prefix.size()) != prefix ||
        name.substr(name.size() - suffix.size()) != suffix)
      continue;
    const std::string_view digits =
        name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    int layer = -1;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), layer);
    if (ec != std::errc() || end != digits.data() + digits.size() || layer < 0 ||
        (digits.size() > 1 && digits[0] == '0'))
      continue;
    return TensorId{r.role, layer};
  }
  return std::nullopt;
}

std::optional<NamingScheme> DetectScheme(const std::vector<std::string_view>& names) {
  for (std::string_view n : names)
    for (NamingScheme s : {NamingScheme::kHf, NamingScheme::kMeta, NamingScheme::kGguf})
      if (n == Pattern(s, TensorRole::kTokEmbedding)) return s;
  return std::nullopt;
}

}  // namespace herd
