// herd perplexity --model PATH --file TEXT [--ctx 512] [--threads T]
// Perplexity the way llama.cpp's llama-perplexity computes it, so the two compare directly: the
// text is tokenized once (BOS as the model's add_bos_token says), cut into chunks of --ctx tokens;
// each chunk runs from an empty cache with its first token replaced by BOS (when the model adds
// one), and only the second half of each chunk is scored (positions ctx/2 .. ctx-2 predicting the
// next token), so every scored token has at least ctx/2 tokens of context. Prints per-chunk running
// estimates and the final PPL, bits per token and bits per byte (of the scored tokens' text).
#include <cmath>
#include <cstdio>
#include <string>

#include "apps/herd/commands.h"
#include "apps/herd/model_common.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "io/mapped_file.h"
#include "model/forward.h"

namespace herd::app {
namespace {

struct PerplexityOptions {
  std::string model, file, cache_type = "f16", numerics = "herd";
  int ctx = 512, threads = 0;
};

int RunPerplexity(const PerplexityOptions& o) {
  auto text = ReadFileToString(o.file);
  if (!text.ok()) return Fail(text.status().message());
  // llama.cpp's -f drops one trailing newline (common/arg.cpp); so do we, so that a file ending in
  // '\n' tokenizes to the same tokens (and, at a chunk boundary, the same number of chunks).
  if (!text->empty() && text->back() == '\n') text->pop_back();
  if (o.ctx < 4) return Fail("--ctx must be at least 4");
  const auto cache_type = ParseCacheTypeFlag(o.cache_type);
  if (!cache_type) return 1;
  const auto numerics = ParseNumericsFlag(o.numerics);
  if (!numerics) return 1;
  auto loaded = LoadForInference(o.model, o.ctx, *cache_type, true, false, 1, *numerics);
  if (!loaded) return 1;
  const Model& model = loaded->model;
  const Tokenizer& tok = *loaded->tokenizer;
  EncodeOptions enc;
  enc.add_bos = model.add_bos;
  const std::vector<int32_t> tokens = tok.Encode(*text, enc);
  const int n_chunks = static_cast<int>(tokens.size()) / o.ctx;
  if (n_chunks == 0)
    return Fail(fmt::format("{}: {} tokens, fewer than one chunk of --ctx {}", o.file,
                            tokens.size(), o.ctx));
  std::fprintf(stderr, "herd: %s: %zu tokens, %d chunks of %d\n", o.file.c_str(), tokens.size(),
               n_chunks, o.ctx);
  ThreadPool pool(o.threads);
  KVCache cache(model.config, o.ctx, *cache_type);
  std::vector<float> logits;
  const int vocab = model.config.vocab_size, first = o.ctx / 2;
  double nll = 0;  // natural log
  uint64_t scored = 0, scored_bytes = 0;
  Timer timer;
  for (int c = 0; c < n_chunks; ++c) {
    std::vector<int> chunk(tokens.begin() + c * o.ctx, tokens.begin() + (c + 1) * o.ctx);
    if (model.add_bos && tok.bos_id() >= 0) chunk[0] = tok.bos_id();
    cache.Clear();
    Status st = Forward(model, chunk, &cache, true, &logits, &pool);
    if (!st.ok()) return Fail(st.message());
    for (int i = first; i < o.ctx - 1; ++i) {
      const float* row = &logits[static_cast<size_t>(i) * vocab];
      double max = row[0], sum = 0;
      for (int v = 1; v < vocab; ++v) max = std::max<double>(max, row[v]);
      for (int v = 0; v < vocab; ++v) sum += std::exp(row[v] - max);
      const int target = chunk[i + 1];
      nll += std::log(sum) + max - row[target];
      scored_bytes += tok.TokenBytes(target).size();
      ++scored;
    }
    std::fprintf(stderr, "[%d]%.4f%s", c + 1, std::exp(nll / scored),
                 c + 1 < n_chunks ? "," : "\n");
  }
  const double ppl = std::exp(nll / scored), bits = nll / std::log(2.0);
  std::printf(
      "{\"ppl\": %.6f, \"bits_per_token\": %.6f, \"bits_per_byte\": %.6f, \"tokens_scored\": %llu, "
      "\"chunks\": %d, \"ctx\": %d}\n",
      ppl, bits / scored, bits / scored_bytes, static_cast<unsigned long long>(scored), n_chunks,
      o.ctx);
  std::fprintf(stderr, "herd: Final estimate: PPL = %.4f (%.1f s)\n", ppl, timer.Seconds());
  return 0;
}

}  // namespace

void AddPerplexityCommand(CLI::App& app, int* exit_code) {
  static PerplexityOptions o;
  auto* cmd =
      app.add_subcommand("perplexity", "Perplexity of a model on a text (llama.cpp's method)");
  cmd->add_option("--model", o.model, "HF directory, Meta directory or .gguf file")->required();
  cmd->add_option("--file", o.file, "Text file")->required();
  cmd->add_option("--ctx", o.ctx, "Tokens per chunk (the second half of each is scored)")
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "Threads (0 = all cores)");
  cmd->add_option("--cache-type", o.cache_type, kCacheTypeHelp);
  cmd->add_option("--numerics", o.numerics, kNumericsHelp);
  cmd->callback([exit_code] { *exit_code = RunPerplexity(o); });
}

}  // namespace herd::app
