#include "model/load.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/cpu.h"
#include "io/gguf.h"
#include "io/gguf_index.h"
#include "io/mapped_file.h"
#include "io/pth.h"
#include "io/safetensors.h"
#include "kernels/ggml_numerics.h"
#include "kernels/quant.h"

namespace herd {
namespace fs = std::filesystem;

const char* FormatName(ModelFormat f) {
  switch (f) {
    case ModelFormat::kHf:
      return "Hugging Face";
    case ModelFormat::kMeta:
      return "Meta";
    case ModelFormat::kGguf:
      return "GGUF";
  }
  return "?";
}

namespace {

bool IsGgufFile(const std::string& path) {
  auto f = MappedFile::Open(path);
  return f.ok() && (*f)->view().substr(0, 4) == "GGUF";
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::vector<std::string> MetaShardPaths(const fs::path& dir) {
  std::vector<std::string> paths;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("consolidated.") && name.ends_with(".pth")) paths.push_back(e.path());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

// generation_config.json: its eos_token_id (an id or a list) joins the config's stop ids.
Status AddGenerationConfig(const fs::path& dir, LlamaConfig* c) {
  const fs::path p = dir / "generation_config.json";
  std::error_code ec;
  if (!fs::exists(p, ec)) return Status::Ok();
  HERD_ASSIGN_OR_RETURN(std::string text, ReadFileToString(p.string()));
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::Errorf("{}: not a JSON object", p.string());
  std::vector<nlohmann::json> ids;
  if (j.contains("eos_token_id")) {
    const auto& e = j["eos_token_id"];
    if (e.is_array())
      ids.assign(e.begin(), e.end());
    else if (!e.is_null())
      ids.push_back(e);
  }
  for (const auto& id : ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= c->vocab_size)
      return Status::Errorf("{}: eos_token_id {} is not a token id of this model", p.string(),
                            id.dump());
    const int v = id.get<int>();
    if (std::find(c->eos_ids.begin(), c->eos_ids.end(), v) == c->eos_ids.end())
      c->eos_ids.push_back(v);
  }
  return Status::Ok();
}

using OwnedBytes = std::shared_ptr<std::vector<uint8_t>>;

void Own(LlamaWeights* w, Weight* t, std::vector<uint8_t> bytes) {
  auto owned = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  t->data = owned->data();
  w->storage.push_back(std::move(owned));
}

}  // namespace

Result<ModelFiles> FindModelFiles(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::Errorf("{}: no such file or directory", path);
  fs::path dir = path;
  if (!fs::is_directory(path, ec)) {
    if (IsGgufFile(path)) return ModelFiles{ModelFormat::kGguf, path};
    dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
  }
  if (fs::exists(dir / "config.json", ec)) return ModelFiles{ModelFormat::kHf, dir.string()};
  if (fs::exists(dir / "params.json", ec)) return ModelFiles{ModelFormat::kMeta, dir.string()};
  std::vector<std::string> ggufs;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".gguf") ggufs.push_back(e.path().string());
  if (ggufs.size() == 1) return ModelFiles{ModelFormat::kGguf, ggufs[0]};
  return Status::Errorf(
      "{}: not a model: expected a Hugging Face directory (config.json + *.safetensors), Meta's "
      "download (params.json + consolidated.00.pth) or a .gguf file",
      path);
}

Result<LlamaConfig> LoadModelConfig(const ModelFiles& files) {
  switch (files.format) {
    case ModelFormat::kHf: {
      const std::string p = files.root + "/config.json";
      HERD_ASSIGN_OR_RETURN(std::string text, ReadFileToString(p));
      HERD_ASSIGN_OR_RETURN(LlamaConfig c, ParseHfConfig(text, p));
      HERD_RETURN_IF_ERROR(AddGenerationConfig(files.root, &c));
      return c;
    }
    case ModelFormat::kMeta: {
      const std::string p = files.root + "/params.json";
      HERD_ASSIGN_OR_RETURN(std::string text, ReadFileToString(p));
      HERD_ASSIGN_OR_RETURN(LlamaConfig c, ParseMetaParams(text, p));
      // params.json does not say whether the output projection is tied; the checkpoint does.
      for (const std::string& shard : MetaShardPaths(files.root)) {
        HERD_ASSIGN_OR_RETURN(TensorIndex index, LoadPth(shard));
        c.tie_word_embeddings = index.Find("output.weight") == nullptr;
        break;
      }
      return c;
    }
    case ModelFormat::kGguf: {
      HERD_ASSIGN_OR_RETURN(gguf::File f, gguf::File::Open(files.root));
      return ConfigFromGguf(f);
    }
  }
  return Status::Error("unknown format");
}

Status BindWeights(const LlamaConfig& c, const TensorIndex& index, NamingScheme scheme,
                   bool hf_rope_order, LlamaWeights* w, std::vector<std::string>* warnings) {
  w->layers.assign(c.n_layers, LayerWeights{});
  w->tied = c.tie_word_embeddings;
  const std::string output_name = TensorName(scheme, TensorId{TensorRole::kOutput});
  const TensorEntry* output = index.Find(output_name);
  if (w->tied && output) {
    warnings->push_back(output->file +
                        ": the config ties the output projection to the embedding, "
                        "but the checkpoint has its own '" +
                        output_name + "'; using the embedding");
  }
  std::vector<std::string> used;
  Status status;
  ForEachTensor(*w, [&](TensorId id, Weight& t) {
    if (!status.ok()) return;
    const std::string name = TensorName(scheme, id);
    const TensorEntry* e = index.Find(name);
    if (!e) {
      std::string where = index.entries().empty() ? "the checkpoint" : index.entries()[0].file;
      status = Status::Errorf("{}: missing tensor '{}'{}", where, name,
                              id.role == TensorRole::kOutput
                                  ? " (the config says the output projection is not tied "
                                    "to the embedding, so the checkpoint must have it)"
                                  : "");
      return;
    }
    used.push_back(name);
    const auto want = ExpectedShape(c, id.role);
    if (e->shape != want) {
      status = Status::Errorf("{}: tensor '{}' has shape {}, but the config ({}) needs {}", e->file,
                              name, ShapeString(e->shape), c.Describe(), ShapeString(want));
      return;
    }
    if (!kernels::CanDequantize(e->dtype)) {
      status = Status::Errorf(
          "{}: tensor '{}' has dtype {}, which herd cannot compute with yet "
          "(supported: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k)",
          e->file, name, Name(e->dtype));
      return;
    }
    t.dtype = e->dtype;
    t.shape = e->shape;
    t.data = e->data;
    if (want.size() == 1 || (t.dtype == DType::kF32 && reinterpret_cast<uintptr_t>(t.data) % 4)) {
      // Norms are used as float32; an unaligned float32 tensor is copied to aligned memory.
      std::vector<uint8_t> f(t.numel() * sizeof(float));
      kernels::DequantizeRow(t.dtype, t.data, t.numel(), reinterpret_cast<float*>(f.data()));
      t.dtype = DType::kF32;
      Own(w, &t, std::move(f));
    }
    if (hf_rope_order && (id.role == TensorRole::kWq || id.role == TensorRole::kWk)) {
      Own(w, &t, PermuteRowsHfToMeta(t, id.role == TensorRole::kWq ? c.n_heads : c.n_kv_heads));
    }
  });
  HERD_RETURN_IF_ERROR(status);
  if (w->tied) w->output = w->tok_embeddings;
  if (w->tied && output) used.push_back(output_name);
  std::sort(used.begin(), used.end());
  for (const TensorEntry& e : index.entries()) {
    if (std::binary_search(used.begin(), used.end(), e.name)) continue;
    if (e.name.ends_with("rotary_emb.inv_freq") || e.name == "rope_freqs.weight" ||
        e.name == "rope.freqs")
      continue;  // RoPE tables: recomputed from the config (GGUF's rope_freqs is read separately)
    warnings->push_back(e.file + ": ignoring tensor '" + e.name +
                        "', which is not part of a Llama model");
  }
  return Status::Ok();
}

namespace {

Status LoadHf(Model* m) {
  const fs::path tc = fs::path(m->files.root) / "tokenizer_config.json";
  std::error_code ec;
  if (fs::exists(tc, ec)) {
    HERD_ASSIGN_OR_RETURN(std::string text, ReadFileToString(tc.string()));
    auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("chat_template") && j["chat_template"].is_string())
      m->chat_template = j["chat_template"].get<std::string>();
  }
  HERD_ASSIGN_OR_RETURN(TensorIndex index, LoadSafetensorsDir(m->files.root));
  HERD_RETURN_IF_ERROR(BindWeights(m->config, index, NamingScheme::kHf, /*hf_rope_order=*/true,
                                   &m->weights, &m->warnings));
  m->weights.storage.push_back(std::make_shared<TensorIndex>(std::move(index)));
  m->rope_inv_freq = RopeInverseFrequencies(m->config);
  return Status::Ok();
}

Status LoadMeta(Model* m) {
  const auto paths = MetaShardPaths(m->files.root);
  if (paths.empty())
    return Status::Errorf("{}: no consolidated.*.pth checkpoint next to params.json",
                          m->files.root);
  std::vector<TensorIndex> shards;
  for (const auto& p : paths) {
    HERD_ASSIGN_OR_RETURN(TensorIndex index, LoadPth(p));
    shards.push_back(std::move(index));
  }
  TensorIndex index;
  if (shards.size() == 1) {
    index = std::move(shards[0]);
  } else {
    HERD_ASSIGN_OR_RETURN(index, MergeMetaShards(std::move(shards)));
  }
  HERD_RETURN_IF_ERROR(
      BindWeights(m->config, index, NamingScheme::kMeta, false, &m->weights, &m->warnings));
  m->weights.storage.push_back(std::make_shared<TensorIndex>(std::move(index)));
  m->rope_inv_freq = RopeInverseFrequencies(m->config);
  return Status::Ok();
}

// llama.cpp stores Llama 3.1 scaling as rope_freqs: one divisor per frequency (1 for the high
// frequencies, the scaling factor for the low ones).
Status LoadGguf(Model* m) {
  HERD_ASSIGN_OR_RETURN(gguf::File file, gguf::File::Open(m->files.root));
  if (file.Find("tokenizer.chat_template")) {
    HERD_ASSIGN_OR_RETURN(std::string_view t, file.GetString("tokenizer.chat_template"));
    m->chat_template = std::string(t);
  }
  if (file.Find("tokenizer.ggml.add_bos_token")) {
    const gguf::Value* v = file.Find("tokenizer.ggml.add_bos_token");
    if (v->type != gguf::ValueType::kBool)
      return Status::Errorf("{}: tokenizer.ggml.add_bos_token is not a bool", file.path());
    m->add_bos = v->i != 0;
  }
  auto shared = std::make_shared<const gguf::File>(std::move(file));
  HERD_ASSIGN_OR_RETURN(TensorIndex index, GgufTensorIndex(shared));
  HERD_RETURN_IF_ERROR(
      BindWeights(m->config, index, NamingScheme::kGguf, false, &m->weights, &m->warnings));
  m->rope_inv_freq = RopeInverseFrequencies(m->config);
  if (const TensorEntry* f = index.Find("rope_freqs.weight")) {
    const int half = m->config.head_dim / 2;
    if (f->shape != std::vector<int64_t>{half} || f->dtype != DType::kF32)
      return Status::Errorf("{}: rope_freqs.weight must be f32 [{}], got {} {}", f->file, half,
                            Name(f->dtype), ShapeString(f->shape));
    std::vector<float> div(half);
    std::memcpy(div.data(), f->data, half * sizeof(float));
    double max_div = 1;
    for (int i = 0; i < half; ++i) {
      if (!(div[i] > 0))
        return Status::Errorf("{}: rope_freqs.weight[{}] = {} is not positive", f->file, i, div[i]);
      m->rope_inv_freq[i] /= div[i];
      max_div = std::max<double>(max_div, div[i]);
    }
    // Record what the file implies, for Describe() and the self-check.
    m->config.rope_scaling = RopeScaling{};
    m->config.rope_scaling->factor = max_div;
  }
  m->weights.storage.push_back(std::make_shared<TensorIndex>(std::move(index)));
  return Status::Ok();
}

}  // namespace

Result<Model> LoadModel(const std::string& path) {
  Model m;
  HERD_ASSIGN_OR_RETURN(m.files, FindModelFiles(path));
  HERD_ASSIGN_OR_RETURN(m.config, LoadModelConfig(m.files));
  m.warnings = m.config.warnings;
  switch (m.files.format) {
    case ModelFormat::kHf:
      HERD_RETURN_IF_ERROR(LoadHf(&m));
      break;
    case ModelFormat::kMeta:
      HERD_RETURN_IF_ERROR(LoadMeta(&m));
      break;
    case ModelFormat::kGguf:
      HERD_RETURN_IF_ERROR(LoadGguf(&m));
      break;
  }
  return m;
}

}  // namespace herd

namespace herd {

std::string NumericsUnsupported(const Model& model, Numerics numerics, DType cache_type) {
  if (numerics == Numerics::kHerd) return "";
  if (BestIsa(DetectCpu()) < Isa::kAvx2) {
    return "--numerics ggml reproduces llama.cpp's AVX2 code path and needs a CPU with AVX2, FMA "
           "and F16C";
  }
  if (cache_type != DType::kF16) {
    return "--numerics ggml reproduces llama.cpp's f16 KV cache; --cache-type " +
           std::string(Name(cache_type)) + " is not supported with it";
  }
  if (model.config.head_dim % 32 != 0) {
    return "--numerics ggml reproduces llama.cpp's attention for head dims that are a multiple of "
           "32; this model's is " +
           std::to_string(model.config.head_dim);
  }
  if (model.config.rope_scaling) {
    return "--numerics ggml does not reproduce RoPE frequency scaling (this model has llama3 "
           "scaling)";
  }
  std::string bad;
  ForEachTensor(model.weights, [&](TensorId id, const Weight& w) {
    if (w.shape.size() == 2 && !kernels::ggml::Supports(w.dtype) && bad.empty()) {
      bad = TensorName(NamingScheme::kGguf, id) + " is " + std::string(Name(w.dtype));
    }
  });
  if (!bad.empty()) {
    return "--numerics ggml reproduces llama.cpp's q4_1 and q8_0 matrix products only; " + bad;
  }
  return "";
}

}  // namespace herd
