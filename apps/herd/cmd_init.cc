// herd init --preset NAME --out PATH --format hf|gguf|meta [--dtype f32|bf16|f16] [--seed N]
//           [--tokenizer FILE] [--shards N] [--threads T]
// Writes a random-initialised model (N(0, 0.02) weights, unit norms) with the exact shapes and
// config of a published Llama 3 model or a tiny test preset, with the real Llama 3 tokenizer.
#include <cstdio>
#include <string>

#include "apps/herd/commands.h"
#include "apps/herd/model_common.h"
#include "base/paths.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "model/init.h"
#include "model/save.h"
#include "tokenizer/load.h"

namespace herd::app {
namespace {

// Meta's chat template for Llama 3 instruct models (tokenizer_config.json), without tool calling.
constexpr const char* kLlama3ChatTemplate =
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}";

struct InitOptions {
  std::string preset, out, format = "hf", dtype = "bf16", tokenizer;
  uint64_t seed = 0;
  int shards = 1, threads = 0;
};

int RunInit(const InitOptions& o) {
  auto config = PresetConfig(o.preset);
  if (!config.ok()) return Fail(config.status().message());
  SaveOptions save;
  auto format = ParseFormatFlag(o.format);
  if (!format) return 1;
  save.format = *format;
  auto dtype = DTypeFromName(o.dtype);
  if (!dtype || (*dtype != DType::kF32 && *dtype != DType::kBF16 && *dtype != DType::kF16))
    return Fail("--dtype must be f32, bf16 or f16, not \"" + o.dtype + "\"");
  save.dtype = *dtype;
  save.meta_shards = o.shards;
  save.tokenizer_model_path = o.tokenizer.empty() ? DefaultLlama3TokenizerPath() : o.tokenizer;
  save.chat_template = kLlama3ChatTemplate;
  auto tok = LoadTokenizerData(save.tokenizer_model_path);
  if (!tok.ok())
    return Fail(tok.status().message() + " (scripts/setup installs Meta's tokenizer.model)");
  if (static_cast<int>(tok->tokens.size()) != config->vocab_size)
    return Fail(fmt::format("{}: {} tokens, but {} needs a vocabulary of {}",
                            save.tokenizer_model_path, tok->tokens.size(), o.preset,
                            config->vocab_size));
  if (save.format == ModelFormat::kMeta && tok->merges.size() > 0)
    return Fail("--format meta copies a tiktoken tokenizer.model; " + save.tokenizer_model_path +
                " is not one");
  ThreadPool pool(o.threads);
  Timer timer;
  std::fprintf(stderr, "herd: init %s: %s\n", o.preset.c_str(), config->Describe().c_str());
  auto weights = InitRandomWeights(*config, save.dtype, o.seed, &pool);
  if (!weights.ok()) return Fail(weights.status().message());
  Status st = SaveModel(*config, *weights, &*tok, save, o.out);
  if (!st.ok()) return Fail(st.message());
  std::fprintf(stderr, "herd: wrote %s (%s, %s, %.1f MiB of weights, seed %llu) in %.1f s\n",
               o.out.c_str(), FormatName(save.format), o.dtype.c_str(),
               weights->TotalBytes() / 1048576.0, static_cast<unsigned long long>(o.seed),
               timer.Seconds());
  return 0;
}

}  // namespace

void AddInitCommand(CLI::App& app, int* exit_code) {
  static InitOptions o;
  auto* cmd = app.add_subcommand(
      "init", "Write a random-initialised Llama 3 model with real shapes (no download needed)");
  std::string presets;
  for (const auto& p : PresetNames()) presets += (presets.empty() ? "" : ", ") + p;
  cmd->add_option("--preset", o.preset, "Shape and config: " + presets)->required();
  cmd->add_option("--out", o.out, "Output directory (hf, meta) or .gguf file")->required();
  cmd->add_option("--format", o.format, "hf, meta or gguf")->capture_default_str();
  cmd->add_option("--dtype", o.dtype, "f32, bf16 or f16")->capture_default_str();
  cmd->add_option("--seed", o.seed, "Random seed")->capture_default_str();
  cmd->add_option("--tokenizer", o.tokenizer,
                  "tiktoken tokenizer.model (default: the one scripts/setup installs)");
  cmd->add_option("--shards", o.shards, "Meta format: model-parallel shards")
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "Threads (0 = all cores)");
  cmd->callback([exit_code] { *exit_code = RunInit(o); });
}

}  // namespace herd::app
