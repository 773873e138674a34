// Loading a model for a subcommand: find its files, print the memory plan and refuse when it will
// not fit, load, run the load-time self-check and print its warnings.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/dtype.h"
#include "model/load.h"
#include "tokenizer/load.h"
#include "tokenizer/tokenizer.h"

namespace herd::app {

struct LoadedModel {
  Model model;
  std::optional<Tokenizer> tokenizer;  // absent when the model directory has none
  int ctx = 0;                         // KV cache capacity the plan was made for
  DType cache_type = DType::kF16;      // KV cache element type the plan was made for
};

// ctx <= 0: the model's max_seq_len capped at 8192. The memory plan counts `sequences` KV caches
// of ctx positions. Messages go to stderr, prefixed "herd: ". Returns nullopt (after printing
// why) on failure.
// numerics: see model/load.h (kGgml refuses what it cannot reproduce, and leaves the weights
// unpacked: its kernels read the file's own blocks).
std::optional<LoadedModel> LoadForInference(const std::string& path, int ctx, DType cache_type,
                                            bool need_tokenizer, bool quiet, int sequences = 1,
                                            Numerics numerics = Numerics::kHerd);

// --numerics herd|ggml; nullopt (after printing why) otherwise.
std::optional<Numerics> ParseNumericsFlag(const std::string& flag);
inline constexpr const char* kNumericsHelp =
    "herd (default: herd's kernels) or ggml (llama.cpp's CPU arithmetic reproduced operation for "
    "operation, for output identical to llama.cpp's AVX2 build; q4_1 / q8_0 models, f16 cache)";

// --cache-type f16|bf16|f32 (the KV cache's element type); nullopt (after printing why) otherwise.
std::optional<DType> ParseCacheTypeFlag(const std::string& flag);
inline constexpr const char* kCacheTypeHelp =
    "KV cache element type: f16 (default, as llama.cpp), bf16 or f32 (exact)";

// A model loaded to be written out again (convert, quantize): its load warnings printed, and its
// tokenizer if it has one (a note on stderr says none will be written otherwise).
struct ModelToSave {
  Model model;
  std::optional<TokenizerData> tokenizer;
  const TokenizerData* tokenizer_or_null() const { return tokenizer ? &*tokenizer : nullptr; }
};
std::optional<ModelToSave> LoadForSaving(const std::string& path);

// Prints "herd: <message>" to stderr; returns 1 (the exit code).
int Fail(const std::string& message);

// --format hf|meta|gguf; nullopt (after printing why) for anything else.
std::optional<ModelFormat> ParseFormatFlag(const std::string& flag);

}  // namespace herd::app
