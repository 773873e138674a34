#include "model/config.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <tuple>

#include "io/gguf.h"

namespace herd {

namespace {

using nlohmann::json;

// Reads an integer field; error if present with another type. `required` fields must be present.
Status GetInt(const json& j, const char* key, bool required, int* out, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) return Status::Errorf("{}: missing \"{}\"", source, key);
    return Status::Ok();
  }
  if (!j[key].is_number_integer() || j[key].get<int64_t>() < INT32_MIN ||
      j[key].get<int64_t>() > INT32_MAX)
    return Status::Errorf("{}: \"{}\" must be an integer, got {}", source, key, j[key].dump());
  *out = j[key].get<int>();
  return Status::Ok();
}

Status GetDouble(const json& j, const char* key, double* out, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return Status::Ok();
  if (!j[key].is_number())
    return Status::Errorf("{}: \"{}\" must be a number, got {}", source, key, j[key].dump());
  *out = j[key].get<double>();
  return Status::Ok();
}

Result<json> ParseJsonObject(std::string_view text, const std::string& source) {
  try {
    json j = json::parse(text);
    if (!j.is_object()) return Status::Errorf("{}: expected a JSON object", source);
    return j;
  } catch (const json::parse_error& e) {
    return Status::Errorf("{}: invalid JSON at byte {}", source, e.byte);
  }
}

Result<RopeScaling> ParseRopeScaling(const json& rs, const std::string& source) {
  if (!rs.is_object()) return Status::Errorf("{}: \"rope_scaling\" must be an object", source);
  const std::string type = rs.contains("rope_type") && rs["rope_type"].is_string()
                               ? rs["rope_type"].get<std::string>()
                               : rs.value("type", std::string());
  if (type != "llama3")
    return Status::Errorf("{}: rope_scaling type \"{}\" is not supported (llama3 only)", source,
                          type);
  RopeScaling s;
  HERD_RETURN_IF_ERROR(GetDouble(rs, "factor", &s.factor, source));
  HERD_RETURN_IF_ERROR(GetDouble(rs, "low_freq_factor", &s.low_freq_factor, source));
  HERD_RETURN_IF_ERROR(GetDouble(rs, "high_freq_factor", &s.high_freq_factor, source));
  HERD_RETURN_IF_ERROR(GetInt(rs, "original_max_position_embeddings", false,
                              &s.original_max_position_embeddings, source));
  return s;
}

bool Is32Shaped(const LlamaConfig& c) {  // Llama 3.2 1B / 3B text models
  return (c.dim == 2048 && c.n_layers == 16) || (c.dim == 3072 && c.n_layers == 28);
}

}  // namespace

int MetaFfnDim(int dim, int multiple_of, std::optional<double> ffn_dim_multiplier) {
  int64_t hidden = 4LL * dim;
  hidden = 2 * hidden / 3;
  if (ffn_dim_multiplier) hidden = static_cast<int64_t>(*ffn_dim_multiplier * hidden);
  hidden = multiple_of * ((hidden + multiple_of - 1) / multiple_of);
  return static_cast<int>(hidden);
}

Status LlamaConfig::Validate(const std::string& source) const {
  auto positive = [&](int v, const char* name) -> Status {
    if (v <= 0) return Status::Errorf("{}: {} must be positive, got {}", source, name, v);
    return Status::Ok();
  };
  HERD_RETURN_IF_ERROR(positive(dim, "dim"));
  HERD_RETURN_IF_ERROR(positive(n_layers, "n_layers"));
  HERD_RETURN_IF_ERROR(positive(n_heads, "n_heads"));
  HERD_RETURN_IF_ERROR(positive(n_kv_heads, "n_kv_heads"));
  HERD_RETURN_IF_ERROR(positive(head_dim, "head_dim"));
  HERD_RETURN_IF_ERROR(positive(ffn_dim, "ffn_dim"));
  HERD_RETURN_IF_ERROR(positive(vocab_size, "vocab_size"));
  HERD_RETURN_IF_ERROR(positive(max_seq_len, "max_seq_len"));
  // Far beyond any Llama (405B: dim 16384, 126 layers, 128 heads, ffn 53248, context 131072);
  // bounding each keeps every size product below 2^63, so plans and buffers cannot overflow.
  for (auto [v, name, max] : {std::tuple{dim, "dim", 1 << 17},
                              {n_layers, "n_layers", 4096},
                              {n_heads, "n_heads", 4096},
                              {n_kv_heads, "n_kv_heads", 4096},
                              {head_dim, "head_dim", 4096},
                              {ffn_dim, "ffn_dim", 1 << 20},
                              {vocab_size, "vocab_size", 1 << 24}}) {
    if (v > max)
      return Status::Errorf("{}: {} = {} is too large (herd accepts at most {})", source, name, v,
                            max);
  }
  if (int64_t{n_heads} * head_dim > (1 << 17))
    return Status::Errorf("{}: n_heads x head_dim = {} is too large", source,
                          int64_t{n_heads} * head_dim);
  if (n_heads % n_kv_heads != 0)
    return Status::Errorf("{}: n_heads {} is not a multiple of n_kv_heads {}", source, n_heads,
                          n_kv_heads);
  if (head_dim % 2 != 0)
    return Status::Errorf("{}: head_dim {} must be even for RoPE", source, head_dim);
  if (!(norm_eps > 0) || !(rope_theta > 0))
    return Status::Errorf("{}: norm_eps and rope_theta must be positive", source);
  if (rope_scaling) {
    const RopeScaling& s = *rope_scaling;
    if (!(s.factor >= 1) || !(s.low_freq_factor > 0) || !(s.high_freq_factor > s.low_freq_factor) ||
        s.original_max_position_embeddings <= 0)
      return Status::Errorf(
          "{}: rope_scaling needs factor >= 1, 0 < low_freq_factor < high_freq_factor and a "
          "positive "
          "original_max_position_embeddings",
          source);
  }
  if (bos_id >= vocab_size)
    return Status::Errorf("{}: bos id {} >= vocab_size {}", source, bos_id, vocab_size);
  for (int e : eos_ids)
    if (e < 0 || e >= vocab_size) return Status::Errorf("{}: eos id {} out of range", source, e);
  return Status::Ok();
}

std::string LlamaConfig::Describe() const {
  std::string s = fmt::format(
      "dim {}, {} layers, {} heads ({} kv, head_dim {}), ffn {}, vocab {}, rope theta {}", dim,
      n_layers, n_heads, n_kv_heads, head_dim, ffn_dim, vocab_size, rope_theta);
  if (rope_scaling)
    s += fmt::format(" (llama3 scaling x{}, original context {})", rope_scaling->factor,
                     rope_scaling->original_max_position_embeddings);
  s += tie_word_embeddings ? ", tied embeddings" : ", untied";
  return s;
}

Result<LlamaConfig> ParseHfConfig(std::string_view text, const std::string& source) {
  HERD_ASSIGN_OR_RETURN(json j, ParseJsonObject(text, source));
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0] != "LlamaForCausalLM")
    return Status::Errorf("{}: architecture {} is not LlamaForCausalLM", source,
                          j["architectures"][0].dump());
  LlamaConfig c;
  HERD_RETURN_IF_ERROR(GetInt(j, "hidden_size", true, &c.dim, source));
  HERD_RETURN_IF_ERROR(GetInt(j, "num_hidden_layers", true, &c.n_layers, source));
  HERD_RETURN_IF_ERROR(GetInt(j, "num_attention_heads", true, &c.n_heads, source));
  c.n_kv_heads = c.n_heads;
  HERD_RETURN_IF_ERROR(GetInt(j, "num_key_value_heads", false, &c.n_kv_heads, source));
  HERD_RETURN_IF_ERROR(GetInt(j, "intermediate_size", true, &c.ffn_dim, source));
  HERD_RETURN_IF_ERROR(GetInt(j, "vocab_size", true, &c.vocab_size, source));
  HERD_RETURN_IF_ERROR(GetInt(j, "max_position_embeddings", false, &c.max_seq_len, source));
  c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
  HERD_RETURN_IF_ERROR(GetInt(j, "head_dim", false, &c.head_dim, source));
  HERD_RETURN_IF_ERROR(GetDouble(j, "rms_norm_eps", &c.norm_eps, source));
  HERD_RETURN_IF_ERROR(GetDouble(j, "rope_theta", &c.rope_theta, source));
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    HERD_ASSIGN_OR_RETURN(c.rope_scaling, ParseRopeScaling(j["rope_scaling"], source));
  }
  if (j.contains("tie_word_embeddings")) {
    if (!j["tie_word_embeddings"].is_boolean())
      return Status::Errorf("{}: tie_word_embeddings must be a boolean", source);
    c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  }
  HERD_RETURN_IF_ERROR(GetInt(j, "bos_token_id", false, &c.bos_id, source));
  if (j.contains("eos_token_id")) {
    const json& e = j["eos_token_id"];
    if (e.is_number_integer()) {
      c.eos_ids.push_back(e.get<int>());
    } else if (e.is_array()) {
      for (const auto& x : e) {
        if (!x.is_number_integer())
          return Status::Errorf("{}: eos_token_id entries must be integers", source);
        c.eos_ids.push_back(x.get<int>());
      }
    } else if (!e.is_null()) {
      return Status::Errorf("{}: eos_token_id must be an integer or a list", source);
    }
  }
  HERD_RETURN_IF_ERROR(c.Validate(source));
  return c;
}

Result<LlamaConfig> ParseMetaParams(std::string_view text, const std::string& source) {
  HERD_ASSIGN_OR_RETURN(json j, ParseJsonObject(text, source));
  LlamaConfig c;
  HERD_RETURN_IF_ERROR(GetInt(j, "dim", true, &c.dim, source));
  HERD_RETURN_IF_ERROR(GetInt(j, "n_layers", true, &c.n_layers, source));
  HERD_RETURN_IF_ERROR(GetInt(j, "n_heads", true, &c.n_heads, source));
  c.n_kv_heads = c.n_heads;
  HERD_RETURN_IF_ERROR(GetInt(j, "n_kv_heads", false, &c.n_kv_heads, source));
  HERD_RETURN_IF_ERROR(GetInt(j, "vocab_size", true, &c.vocab_size, source));
  int multiple_of = 256;
  HERD_RETURN_IF_ERROR(GetInt(j, "multiple_of", false, &multiple_of, source));
  if (multiple_of <= 0) return Status::Errorf("{}: multiple_of must be positive", source);
  std::optional<double> multiplier;
  if (j.contains("ffn_dim_multiplier") && !j["ffn_dim_multiplier"].is_null()) {
    double m = 0;
    HERD_RETURN_IF_ERROR(GetDouble(j, "ffn_dim_multiplier", &m, source));
    multiplier = m;
  }
  c.ffn_dim = c.dim > 0 ? MetaFfnDim(c.dim, multiple_of, multiplier) : 0;
  HERD_RETURN_IF_ERROR(
      GetInt(j, "ffn_dim", false, &c.ffn_dim, source));  // herd-written files say it
  c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
  HERD_RETURN_IF_ERROR(GetDouble(j, "norm_eps", &c.norm_eps, source));
  HERD_RETURN_IF_ERROR(GetDouble(j, "rope_theta", &c.rope_theta, source));
  HERD_RETURN_IF_ERROR(GetInt(j, "max_seq_len", false, &c.max_seq_len, source));
  const bool scaled = j.value("use_scaled_rope", false);
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    HERD_ASSIGN_OR_RETURN(c.rope_scaling, ParseRopeScaling(j["rope_scaling"], source));
  } else if (scaled) {
    c.rope_scaling = RopeScaling{};  // Meta's apply_scaling: factor 8, 1, 4, 8192
    if (Is32Shaped(c)) {
      c.rope_scaling->factor = 32;
      c.warnings.push_back(source +
                           ": Llama 3.2-shaped model with use_scaled_rope and no factor; using 32 "
                           "(Llama 3.2's), not the 8 Meta's reference code hard-codes");
    }
  }
  c.tie_word_embeddings = false;  // decided by the checkpoint: no output.weight means tied
  HERD_RETURN_IF_ERROR(c.Validate(source));
  return c;
}

Result<LlamaConfig> ConfigFromGguf(const gguf::File& f) {
  const std::string& source = f.path();
  HERD_ASSIGN_OR_RETURN(std::string_view arch, f.GetString("general.architecture"));
  if (arch != "llama")
    return Status::Errorf("{}: general.architecture is \"{}\", expected \"llama\"", source, arch);
  auto get = [&](const std::string& key, int* out, bool required) -> Status {
    if (!f.Find(key))
      return required ? Status::Errorf("{}: missing {}", source, key) : Status::Ok();
    auto v = f.GetUint(key);
    if (!v.ok()) return v.status();  // the reader's message already names the file
    if (*v > INT32_MAX) return Status::Errorf("{}: {} = {} is too large", source, key, *v);
    *out = static_cast<int>(*v);
    return Status::Ok();
  };
  LlamaConfig c;
  HERD_RETURN_IF_ERROR(get("llama.embedding_length", &c.dim, true));
  HERD_RETURN_IF_ERROR(get("llama.block_count", &c.n_layers, true));
  HERD_RETURN_IF_ERROR(get("llama.attention.head_count", &c.n_heads, true));
  c.n_kv_heads = c.n_heads;
  HERD_RETURN_IF_ERROR(get("llama.attention.head_count_kv", &c.n_kv_heads, false));
  HERD_RETURN_IF_ERROR(get("llama.feed_forward_length", &c.ffn_dim, true));
  HERD_RETURN_IF_ERROR(get("llama.context_length", &c.max_seq_len, false));
  c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
  HERD_RETURN_IF_ERROR(get("llama.rope.dimension_count", &c.head_dim, false));
  if (f.Find("llama.vocab_size")) {
    HERD_RETURN_IF_ERROR(get("llama.vocab_size", &c.vocab_size, true));
  } else if (f.Find("tokenizer.ggml.tokens")) {
    HERD_ASSIGN_OR_RETURN(auto tokens, f.GetStringArray("tokenizer.ggml.tokens"));
    c.vocab_size = static_cast<int>(tokens->size());
  }
  for (auto [key, out] : {std::pair{"llama.attention.layer_norm_rms_epsilon", &c.norm_eps},
                          {"llama.rope.freq_base", &c.rope_theta}}) {
    if (!f.Find(key)) continue;
    HERD_ASSIGN_OR_RETURN(*out, f.GetFloat(key));
  }
  // llama.cpp stores llama3 scaling as the rope_freqs tensor (per-frequency divisors), not as keys;
  // the weights loader applies it. A missing output.weight means tied embeddings.
  bool has_output = false;
  for (const auto& t : f.tensors()) has_output |= t.name == "output.weight";
  c.tie_word_embeddings = !has_output && !f.tensors().empty();
  int id = -1;
  HERD_RETURN_IF_ERROR(get("tokenizer.ggml.bos_token_id", &c.bos_id, false));
  HERD_RETURN_IF_ERROR(get("tokenizer.ggml.eos_token_id", &id, false));
  if (id >= 0) c.eos_ids.push_back(id);
  // llama.cpp's end-of-turn / end-of-message ids stop generation too.
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    id = -1;
    HERD_RETURN_IF_ERROR(get(key, &id, false));
    if (id >= 0 && std::find(c.eos_ids.begin(), c.eos_ids.end(), id) == c.eos_ids.end())
      c.eos_ids.push_back(id);
  }
  HERD_RETURN_IF_ERROR(c.Validate(source));
  return c;
}

std::vector<double> RopeInverseFrequencies(const LlamaConfig& c) {
  const int half = c.head_dim / 2;
  std::vector<double> inv(half);
  for (int i = 0; i < half; ++i) inv[i] = 1.0 / std::pow(c.rope_theta, (2.0 * i) / c.head_dim);
  if (!c.rope_scaling) return inv;
  const RopeScaling& s = *c.rope_scaling;
  const double old_len = s.original_max_position_embeddings;
  const double low_freq_wavelen = old_len / s.low_freq_factor;
  const double high_freq_wavelen = old_len / s.high_freq_factor;
  for (double& f : inv) {
    const double wavelen = 2 * M_PI / f;
    if (wavelen < high_freq_wavelen) continue;  // high frequencies: unchanged
    if (wavelen > low_freq_wavelen) {
      f /= s.factor;  // low frequencies: scaled
    } else {          // in between: interpolate
      const double smooth =
          (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      f = (1 - smooth) * f / s.factor + smooth * f;
    }
  }
  return inv;
}

std::vector<std::string> PresetNames() {
  return {"llama3-8b", "llama3.1-8b", "llama3.2-1b", "llama3.2-3b", "tiny", "tiny-tied"};
}

Result<LlamaConfig> PresetConfig(std::string_view name) {
  LlamaConfig c;
  c.vocab_size = 128256;
  c.norm_eps = 1e-5;
  c.rope_theta = 500000;
  c.bos_id = 128000;
  c.eos_ids = {128001, 128008, 128009};
  auto shape = [&](int dim, int layers, int heads, int kv, int ffn) {
    c.dim = dim, c.n_layers = layers, c.n_heads = heads, c.n_kv_heads = kv, c.ffn_dim = ffn;
    c.head_dim = dim / heads;
  };
  if (name == "llama3-8b") {
    shape(4096, 32, 32, 8, 14336);
    c.max_seq_len = 8192;
    c.eos_ids = {128001, 128009};
  } else if (name == "llama3.1-8b") {
    shape(4096, 32, 32, 8, 14336);
    c.rope_scaling = RopeScaling{8, 1, 4, 8192};
    c.max_seq_len = 131072;
  } else if (name == "llama3.2-1b" || name == "llama3.2-3b") {
    if (name == "llama3.2-1b")
      shape(2048, 16, 32, 8, 8192);
    else
      shape(3072, 28, 24, 8, 8192);
    c.rope_scaling = RopeScaling{32, 1, 4, 8192};
    c.tie_word_embeddings = true;
    c.max_seq_len = 131072;
  } else if (name == "tiny" || name == "tiny-tied") {
    shape(64, 2, 4, 2, 192);
    c.rope_scaling = RopeScaling{8, 1, 4, 8192};
    c.tie_word_embeddings = name == "tiny-tied";
    c.max_seq_len = 131072;
  } else {
    std::string names;
    for (const auto& n : PresetNames()) names += (names.empty() ? "" : ", ") + n;
    return Status::Errorf("unknown preset \"{}\" (known: {})", name, names);
  }
  HERD_RETURN_IF_ERROR(c.Validate(std::string(name)));
  return c;
}

}  // namespace herd
