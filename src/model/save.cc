#include "model/save.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/thread_pool.h"
#include "io/gguf_writer.h"
#include "io/mapped_file.h"
#include "io/pth_writer.h"
#include "io/safetensors_writer.h"
#include "kernels/quant.h"
#include "tokenizer/export.h"

namespace herd {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A tensor ready to write: bytes in the target dtype and layout (owned when converted).
struct OutTensor {
  TensorId id;
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t* data;
  uint64_t n_bytes;
  std::shared_ptr<std::vector<uint8_t>> owned;
};

std::shared_ptr<std::vector<uint8_t>> Convert(const Weight& w, DType to, ThreadPool* pool) {
  const int64_t rows = w.rows(), cols = w.cols();
  auto out = std::make_shared<std::vector<uint8_t>>(*BytesFor(to, w.numel()));
  const uint64_t in_row = w.n_bytes() / rows, out_row = out->size() / rows;
  // Rows are independent, so chunks of ~64 k elements go to the pool in any order and the bytes
  // do not depend on the thread count.
  const int64_t chunk = std::max<int64_t>(1, 65536 / std::max<int64_t>(cols, 1));
  const int64_t n_chunks = (rows + chunk - 1) / chunk;
  const int n_threads = pool ? pool->size() : 1;
  std::vector<std::vector<float>> buffers(n_threads, std::vector<float>(cols));
  auto run = [&](size_t index, int thread) {
    float* row = buffers[thread].data();
    const int64_t end = std::min<int64_t>(rows, (static_cast<int64_t>(index) + 1) * chunk);
    for (int64_t r = static_cast<int64_t>(index) * chunk; r < end; ++r) {
      kernels::DequantizeRow(w.dtype, w.data + r * in_row, cols, row);
      kernels::QuantizeRow(to, row, cols, out->data() + r * out_row);
    }
  };
  ParallelFor(pool, static_cast<size_t>(n_chunks), run);
  return out;
}

Result<std::vector<OutTensor>> Prepare(const LlamaConfig& c, const LlamaWeights& weights,
                                       NamingScheme scheme, DType matrix_dtype, DType norm_dtype,
                                       const SaveOptions& o) {
  // The plan first (dtype per tensor), so that progress can report totals.
  struct Planned {
    TensorId id;
    const Weight* w;
    DType to;
  };
  std::vector<Planned> plan;
  SaveProgress progress;
  Status status;
  ForEachTensor(weights, [&](TensorId id, const Weight& w) {
    if (!status.ok()) return;
    DType to = w.shape.size() == 1 ? norm_dtype : matrix_dtype;
    if (w.shape.size() == 2 && o.tensor_dtype) to = o.tensor_dtype(id, w.shape);
    if (w.shape.size() == 2 && w.cols() % Info(to).block_size) {
      status = Status::Errorf("{}: rows of {} elements do not split into {} blocks of {}",
                              TensorName(scheme, id), w.cols(), Name(to), Info(to).block_size);
      return;
    }
    plan.push_back({id, &w, to});
    progress.elements_total += w.numel();
    progress.bytes_total += *BytesFor(to, w.numel());
  });
  HERD_RETURN_IF_ERROR(status);
  progress.n_tensors = static_cast<int>(plan.size());
  std::vector<OutTensor> out;
  for (const auto& [id, wp, to] : plan) {
    const Weight& w = *wp;
    OutTensor t{id, TensorName(scheme, id), to, w.shape, w.data, w.n_bytes(), nullptr};
    if (w.dtype != to) {
      t.owned = Convert(w, to, o.pool);
    }
    if (scheme == NamingScheme::kHf && (id.role == TensorRole::kWq || id.role == TensorRole::kWk)) {
      Weight src{to, w.shape, t.owned ? t.owned->data() : w.data, nullptr};
      t.owned = std::make_shared<std::vector<uint8_t>>(
          PermuteRowsMetaToHf(src, id.role == TensorRole::kWq ? c.n_heads : c.n_kv_heads));
    }
    if (t.owned) t.data = t.owned->data(), t.n_bytes = t.owned->size();
    out.push_back(std::move(t));
    if (o.progress) {
      ++progress.tensors_done;
      progress.name = out.back().name;
      progress.dtype = to;
      progress.elements_done += w.numel();
      progress.bytes_done += out.back().n_bytes;
      o.progress(progress);
    }
  }
  return out;
}

// llama.cpp's llama_ftype for a file whose matrices are all `t` (what its loader guesses for
// such a file when general.file_type is absent); -1 for dtypes it has none for.
int64_t LlamaFileTypeOf(DType t) {
  switch (t) {
    case DType::kF32:
      return 0;
    case DType::kF16:
      return 1;
    case DType::kQ4_0:
      return 2;
    case DType::kQ4_1:
      return 3;
    case DType::kQ8_0:
      return 7;
    case DType::kQ5_0:
      return 8;
    case DType::kQ5_1:
      return 9;
    case DType::kQ4_K:
      return 15;
    case DType::kQ5_K:
      return 17;
    case DType::kQ6_K:
      return 18;
    case DType::kBF16:
      return 32;
    default:
      return -1;
  }
}

Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f) return Status::Errorf("{}: cannot write", path.string());
  return Status::Ok();
}

json RopeScalingJson(const RopeScaling& s) {
  return {{"rope_type", "llama3"},
          {"factor", s.factor},
          {"low_freq_factor", s.low_freq_factor},
          {"high_freq_factor", s.high_freq_factor},
          {"original_max_position_embeddings", s.original_max_position_embeddings}};
}

const char* TorchDtypeName(DType t) {
  return t == DType::kBF16 ? "bfloat16" : t == DType::kF16 ? "float16" : "float32";
}

Status SaveHf(const LlamaConfig& c, const LlamaWeights& w, const TokenizerData* tok,
              const SaveOptions& o, const fs::path& dir) {
  if (o.dtype != DType::kF32 && o.dtype != DType::kF16 && o.dtype != DType::kBF16)
    return Status::Errorf("Hugging Face safetensors hold f32, f16 or bf16 weights, not {}",
                          Name(o.dtype));
  json config = {{"architectures", {"LlamaForCausalLM"}},
                 {"model_type", "llama"},
                 {"hidden_size", c.dim},
                 {"num_hidden_layers", c.n_layers},
                 {"num_attention_heads", c.n_heads},
                 {"num_key_value_heads", c.n_kv_heads},
                 {"head_dim", c.head_dim},
                 {"intermediate_size", c.ffn_dim},
                 {"vocab_size", c.vocab_size},
                 {"rms_norm_eps", c.norm_eps},
                 {"rope_theta", c.rope_theta},
                 {"rope_scaling", c.rope_scaling ? RopeScalingJson(*c.rope_scaling) : json()},
                 {"max_position_embeddings", c.max_seq_len},
                 {"tie_word_embeddings", c.tie_word_embeddings},
                 {"hidden_act", "silu"},
                 {"attention_bias", false},
                 {"attention_dropout", 0.0},
                 {"mlp_bias", false},
                 {"initializer_range", 0.02},
                 {"pretraining_tp", 1},
                 {"use_cache", true},
                 {"torch_dtype", TorchDtypeName(o.dtype)},
                 {"bos_token_id", c.bos_id >= 0 ? json(c.bos_id) : json()},
                 {"eos_token_id", c.eos_ids.size() == 1 ? json(c.eos_ids[0]) : json(c.eos_ids)}};
  HERD_RETURN_IF_ERROR(WriteText(dir / "config.json", config.dump(2) + "\n"));
  json gen = {{"bos_token_id", config["bos_token_id"]},
              {"eos_token_id", config["eos_token_id"]},
              {"do_sample", true},
              {"temperature", 0.6},
              {"top_p", 0.9}};
  HERD_RETURN_IF_ERROR(WriteText(dir / "generation_config.json", gen.dump(2) + "\n"));
  if (tok) {
    HERD_RETURN_IF_ERROR(WriteText(dir / "tokenizer.json", HfTokenizerJson(*tok)));
    HERD_RETURN_IF_ERROR(
        WriteText(dir / "tokenizer_config.json", HfTokenizerConfigJson(*tok, o.chat_template)));
  }
  HERD_ASSIGN_OR_RETURN(auto tensors, Prepare(c, w, NamingScheme::kHf, o.dtype, o.dtype, o));
  std::vector<TensorToWrite> out;
  for (const auto& t : tensors) out.push_back({t.name, t.dtype, t.shape, t.data, t.n_bytes});
  return WriteSafetensors((dir / "model.safetensors").string(), out, {{"format", "pt"}});
}

Status SaveMeta(const LlamaConfig& c, const LlamaWeights& w, const TokenizerData* tok,
                const SaveOptions& o, const fs::path& dir) {
  if (o.dtype != DType::kF32 && o.dtype != DType::kF16 && o.dtype != DType::kBF16)
    return Status::Errorf("Meta checkpoints hold f32, f16 or bf16 weights, not {}", Name(o.dtype));
  const int n = o.meta_shards;
  json params = {{"dim", c.dim},
                 {"n_layers", c.n_layers},
                 {"n_heads", c.n_heads},
                 {"n_kv_heads", c.n_kv_heads},
                 {"vocab_size", c.vocab_size},
                 {"ffn_dim", c.ffn_dim},  // herd's addition: exact, no multiple_of arithmetic
                 {"norm_eps", c.norm_eps},
                 {"rope_theta", c.rope_theta},
                 {"max_seq_len", c.max_seq_len},
                 {"use_scaled_rope", c.rope_scaling.has_value()}};
  if (c.rope_scaling) params["rope_scaling"] = RopeScalingJson(*c.rope_scaling);
  HERD_RETURN_IF_ERROR(WriteText(dir / "params.json", params.dump(2) + "\n"));
  if (o.tokenizer_model_path.empty() && tok) {
    HERD_ASSIGN_OR_RETURN(std::string text, TiktokenModelFile(*tok));
    HERD_RETURN_IF_ERROR(WriteText(dir / "tokenizer.model", text));
  } else if (!o.tokenizer_model_path.empty()) {
    std::error_code ec;
    fs::copy_file(o.tokenizer_model_path, dir / "tokenizer.model",
                  fs::copy_options::overwrite_existing, ec);
    if (ec)
      return Status::Errorf("copying {} to {}: {}", o.tokenizer_model_path,
                            (dir / "tokenizer.model").string(), ec.message());
  }
  HERD_ASSIGN_OR_RETURN(auto tensors, Prepare(c, w, NamingScheme::kMeta, o.dtype, o.dtype, o));
  for (int s = 0; s < n; ++s) {
    std::vector<TensorToWrite> out;
    std::vector<std::shared_ptr<std::vector<uint8_t>>> keep;
    for (const auto& t : tensors) {
      const int dim = t.shape.size() == 2 ? MetaSplitDim(t.id.role) : -1;
      if (dim < 0) {
        out.push_back({t.name, t.dtype, t.shape, t.data, t.n_bytes});
        continue;
      }
      if (t.shape[dim] % n)
        return Status::Errorf("{}: dimension {} of size {} does not split into {} shards", t.name,
                              dim, t.shape[dim], n);
      std::vector<int64_t> shape = t.shape;
      shape[dim] /= n;
      const uint64_t row_bytes = t.n_bytes / t.shape[0];
      auto part = std::make_shared<std::vector<uint8_t>>();
      if (dim == 0) {
        const uint8_t* begin = t.data + s * shape[0] * row_bytes;
        part->assign(begin, begin + shape[0] * row_bytes);
      } else {
        const uint64_t piece = row_bytes / n;
        for (int64_t r = 0; r < t.shape[0]; ++r) {
          const uint8_t* begin = t.data + r * row_bytes + s * piece;
          part->insert(part->end(), begin, begin + piece);
        }
      }
      out.push_back({t.name, t.dtype, shape, part->data(), part->size()});
      keep.push_back(std::move(part));
    }
    HERD_RETURN_IF_ERROR(WritePth((dir / fmt::format("consolidated.{:02d}.pth", s)).string(), out));
  }
  return Status::Ok();
}

Status SaveGguf(const LlamaConfig& c, const LlamaWeights& w, const TokenizerData* tok,
                const SaveOptions& o, const std::string& path) {
  gguf::Writer g;
  g.SetString("general.architecture", "llama");
  g.SetString("general.name", fs::path(path).stem().string());
  g.SetUint32("general.quantization_version", 2);
  const int64_t file_type = o.gguf_file_type >= 0 ? o.gguf_file_type : LlamaFileTypeOf(o.dtype);
  if (file_type >= 0) g.SetUint32("general.file_type", static_cast<uint32_t>(file_type));
  g.SetUint32("llama.context_length", c.max_seq_len);
  g.SetUint32("llama.embedding_length", c.dim);
  g.SetUint32("llama.block_count", c.n_layers);
  g.SetUint32("llama.feed_forward_length", c.ffn_dim);
  g.SetUint32("llama.attention.head_count", c.n_heads);
  g.SetUint32("llama.attention.head_count_kv", c.n_kv_heads);
  g.SetUint32("llama.rope.dimension_count", c.head_dim);
  g.SetFloat32("llama.rope.freq_base", static_cast<float>(c.rope_theta));
  g.SetFloat32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.norm_eps));
  g.SetUint32("llama.vocab_size", c.vocab_size);
  if (tok) {
    AddGgufTokenizerMetadata(*tok, &g);
    for (auto [key, text] : {std::pair{"tokenizer.ggml.eot_token_id", "<|eot_id|>"},
                             {"tokenizer.ggml.eom_token_id", "<|eom_id|>"}}) {
      for (size_t id = 0; id < tok->tokens.size(); ++id) {
        if (tok->types[id] == TokenType::kControl && tok->tokens[id] == text)
          g.SetUint32(key, static_cast<uint32_t>(id));
      }
    }
  }
  if (!o.chat_template.empty()) g.SetString("tokenizer.chat_template", o.chat_template);
  HERD_ASSIGN_OR_RETURN(auto tensors, Prepare(c, w, NamingScheme::kGguf, o.dtype, DType::kF32, o));
  std::vector<float> rope_freqs;
  if (c.rope_scaling) {  // llama.cpp's form of llama3 scaling: per-frequency divisors
    LlamaConfig plain = c;
    plain.rope_scaling.reset();
    const auto base = RopeInverseFrequencies(plain), scaled = RopeInverseFrequencies(c);
    for (size_t i = 0; i < base.size(); ++i)
      rope_freqs.push_back(static_cast<float>(base[i] / scaled[i]));
    HERD_RETURN_IF_ERROR(g.AddTensor("rope_freqs.weight", DType::kF32,
                                     {static_cast<int64_t>(rope_freqs.size())}, rope_freqs.data(),
                                     rope_freqs.size() * sizeof(float)));
  }
  for (const auto& t : tensors)
    HERD_RETURN_IF_ERROR(g.AddTensor(t.name, t.dtype, t.shape, t.data, t.n_bytes));
  return g.Write(path);
}

}  // namespace

Status SaveModel(const LlamaConfig& c, const LlamaWeights& w, const TokenizerData* tok,
                 const SaveOptions& o, const std::string& out) {
  if (o.tensor_dtype && o.format != ModelFormat::kGguf)
    return Status::Errorf("per-tensor dtypes need the GGUF format, not {}", FormatName(o.format));
  if (o.format == ModelFormat::kGguf) {
    if (fs::path(out).has_parent_path()) {
      std::error_code ec;
      fs::create_directories(fs::path(out).parent_path(), ec);
    }
    return SaveGguf(c, w, tok, o, out);
  }
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return Status::Errorf("{}: cannot create directory: {}", out, ec.message());
  if (o.format == ModelFormat::kHf) return SaveHf(c, w, tok, o, out);
  if (o.meta_shards < 1) return Status::Error("meta_shards must be >= 1");
  return SaveMeta(c, w, tok, o, out);
}

Result<std::string> TiktokenModelFile(const TokenizerData& t) {
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n = t.tokens.size();
  while (n > 0 && t.types[n - 1] == TokenType::kControl) --n;
  std::string out;
  for (size_t id = 0; id < n; ++id) {
    if (t.types[id] != TokenType::kNormal && t.types[id] != TokenType::kByte)
      return Status::Errorf("{}: token {} is not a BPE token; cannot write a tiktoken file",
                            t.source, id);
    const std::string& b = t.tokens[id];
    for (size_t i = 0; i < b.size(); i += 3) {
      uint32_t v = uint8_t(b[i]) << 16;
      if (i + 1 < b.size()) v |= uint8_t(b[i + 1]) << 8;
      if (i + 2 < b.size()) v |= uint8_t(b[i + 2]);
      out += kB64[v >> 18];
      out += kB64[(v >> 12) & 63];
      out += i + 1 < b.size() ? kB64[(v >> 6) & 63] : '=';
      out += i + 2 < b.size() ? kB64[v & 63] : '=';
    }
    out += ' ' + std::to_string(id) + '\n';
  }
  return out;
}

}  // namespace herd
