#include "apps/herd/model_common.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "base/thread_pool.h"
#include "model/forward.h"
#include "model/self_check.h"
#include "tokenizer/load.h"
#include "train/data_card.h"

namespace herd::app {
namespace fs = std::filesystem;

int Fail(const std::string& message) {
  std::fprintf(stderr, "herd: %s\n", message.c_str());
  return 1;
}

std::optional<ModelFormat> ParseFormatFlag(const std::string& flag) {
  if (flag == "hf") return ModelFormat::kHf;
  if (flag == "meta") return ModelFormat::kMeta;
  if (flag == "gguf") return ModelFormat::kGguf;
  Fail("--format must be hf, meta or gguf, not \"" + flag + "\"");
  return std::nullopt;
}

namespace {

// MemAvailable from /proc/meminfo, in bytes; 0 if unknown.
uint64_t AvailableMemory() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kb;
  std::string unit;
  while (f >> key >> kb) {
    std::getline(f, unit);
    if (key == "MemAvailable:") return kb * 1024;
  }
  return 0;
}

// Bytes of the weight files (what the mmap will bring in).
uint64_t WeightFileBytes(const ModelFiles& files) {
  std::error_code ec;
  if (files.format == ModelFormat::kGguf) return fs::file_size(files.root, ec);
  uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(files.root, ec)) {
    const auto ext = e.path().extension();
    if (ext == ".safetensors" || ext == ".pth") total += fs::file_size(e.path(), ec);
  }
  return total;
}

double GiB(uint64_t b) { return b / double(1ull << 30); }

}  // namespace

std::optional<DType> ParseCacheTypeFlag(const std::string& flag) {
  const auto t = DTypeFromName(flag);
  if (!t || !KVCache::IsCacheType(*t)) {
    Fail("--cache-type: \"" + flag + "\" is not f16, bf16 or f32");
    return std::nullopt;
  }
  return t;
}

std::optional<ModelToSave> LoadForSaving(const std::string& path) {
  auto model = LoadModel(path);
  if (!model.ok()) return Fail(model.status().message()), std::nullopt;
  for (const auto& w : model->warnings) std::fprintf(stderr, "herd: warning: %s\n", w.c_str());
  ModelToSave out{std::move(model).value(), std::nullopt};
  auto tok = LoadTokenizerData(out.model.files.root);
  if (tok.ok()) {
    out.tokenizer = std::move(tok).value();
  } else {
    std::fprintf(stderr, "herd: no tokenizer written (%s)\n", tok.status().message().c_str());
  }
  return out;
}

std::optional<Numerics> ParseNumericsFlag(const std::string& flag) {
  if (flag == "herd") return Numerics::kHerd;
  if (flag == "ggml") return Numerics::kGgml;
  Fail("--numerics: \"" + flag + "\" is not herd or ggml");
  return std::nullopt;
}

std::optional<LoadedModel> LoadForInference(const std::string& path, int ctx, DType cache_type,
                                            bool need_tokenizer, bool quiet, int sequences,
                                            Numerics numerics) {
  auto files = FindModelFiles(path);
  if (!files.ok()) return Fail(files.status().message()), std::nullopt;
  auto config = LoadModelConfig(*files);
  if (!config.ok()) return Fail(config.status().message()), std::nullopt;
  if (ctx <= 0) ctx = std::min(config->max_seq_len, 8192);
  const uint64_t weights = WeightFileBytes(*files),
                 kv = sequences * KVCache::BytesFor(*config, ctx, cache_type);
  const uint64_t avail = AvailableMemory();
  if (!quiet) {
    std::fprintf(stderr,
                 "herd: %s model %s\nherd: %s\nherd: memory plan: weights %.2f GiB (mapped) + KV "
                 "cache %.2f GiB (%d x %d positions, %s) = %.2f GiB; %.2f GiB available\n",
                 FormatName(files->format), files->root.c_str(), config->Describe().c_str(),
                 GiB(weights), GiB(kv), sequences, ctx, std::string(Name(cache_type)).c_str(),
                 GiB(weights + kv), GiB(avail));
  }
  if (avail > 0 && weights + kv > avail) {
    Fail(
        fmt::format("the model needs {:.2f} GiB but only {:.2f} GiB is available; try a smaller "
                    "--ctx (the KV cache takes {:.2f} GiB at {} positions)",
                    GiB(weights + kv), GiB(avail), GiB(kv), ctx));
    return std::nullopt;
  }
  auto model = LoadModel(path);
  if (!model.ok()) return Fail(model.status().message()), std::nullopt;
  LoadedModel out{std::move(model).value(), std::nullopt, ctx, cache_type};
  if (const std::string why = NumericsUnsupported(out.model, numerics, cache_type); !why.empty()) {
    Fail(why);
    return std::nullopt;
  }
  out.model.numerics = numerics;
  auto tok = LoadTokenizer(out.model.files.root);
  if (tok.ok()) {
    out.tokenizer = std::move(tok).value();
  } else if (need_tokenizer) {
    Fail(tok.status().message());
    return std::nullopt;
  }
  for (const std::string& w : SelfCheck(out.model, out.tokenizer ? &*out.tokenizer : nullptr))
    std::fprintf(stderr, "herd: warning: %s\n", w.c_str());
  if (numerics == Numerics::kHerd) {
    const auto t0 = std::chrono::steady_clock::now();
    ThreadPool pool;
    const uint64_t packed = PackForInference(&out.model.weights, &pool);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (packed > 0 && !quiet) {
      std::fprintf(
          stderr,
          "herd: repacked %.2f GiB of block-quantised weights for the integer GEMM in %.2f s\n",
          GiB(packed), s);
    }
  }
  // A model herd trained says what data made it (data_card.json next to its weights).
  const fs::path card = fs::path(out.model.files.root) / "data_card.json";
  std::error_code ec;
  if (!quiet && fs::is_regular_file(card, ec)) {
    std::ifstream f(card);
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto summary = SummarizeDataCard(text);
    std::fprintf(stderr, "herd: data card: %s\n",
                 summary.ok()
                     ? summary->c_str()
                     : ("unreadable " + card.string() + ": " + summary.status().message()).c_str());
  }
  return out;
}

}  // namespace herd::app
