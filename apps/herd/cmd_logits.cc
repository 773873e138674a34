// herd logits --model PATH --tokens ID,ID,... [--all] --out FILE [--threads T] [--cache-type f32]
//             [--numerics herd|ggml]
// Contract (scripts and tests rely on it): writes float32 little-endian logits to FILE — the last
// position's [vocab], or with --all every position's, row-major [n_positions x vocab] — and prints
// the last position's top 5 as one JSON line {"top": [[id, logit], ...]}.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "apps/herd/commands.h"
#include "apps/herd/model_common.h"
#include "base/thread_pool.h"
#include "model/forward.h"

namespace herd::app {
namespace {

struct LogitsOptions {
  std::string model, tokens, out, cache_type = "f32", numerics = "herd";
  bool all = false;
  int threads = 0;
};

Result<std::vector<int>> ParseTokenList(const std::string& s) {
  std::vector<int> ids;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t end = std::min(s.find(',', pos), s.size());
    int v = 0;
    const char* b = s.data() + pos;
    const char* e = s.data() + end;
    while (b < e && *b == ' ') ++b;
    auto [p, ec] = std::from_chars(b, e, v);
    if (ec != std::errc() || p != e || b == e)
      return Status::Errorf("--tokens: '{}' is not a token id (expected ID,ID,...)",
                            s.substr(pos, end - pos));
    ids.push_back(v);
    pos = end + 1;
  }
  return ids;
}

int RunLogits(const LogitsOptions& o) {
  auto ids = ParseTokenList(o.tokens);
  if (!ids.ok()) return Fail(ids.status().message());
  const auto cache_type = ParseCacheTypeFlag(o.cache_type);
  if (!cache_type) return 1;
  const auto numerics = ParseNumericsFlag(o.numerics);
  if (!numerics) return 1;
  auto loaded = LoadForInference(o.model, static_cast<int>(ids->size()), *cache_type, false, true,
                                 1, *numerics);
  if (!loaded) return 1;
  const Model& model = loaded->model;
  ThreadPool pool(o.threads);
  KVCache cache(model.config, static_cast<int>(ids->size()), *cache_type);
  std::vector<float> logits;
  Status st = Forward(model, *ids, &cache, o.all, &logits, &pool);
  if (!st.ok()) return Fail(st.message());
  FILE* f = std::fopen(o.out.c_str(), "wb");
  if (!f || std::fwrite(logits.data(), sizeof(float), logits.size(), f) != logits.size() ||
      std::fclose(f) != 0)
    return Fail(o.out + ": cannot write the logits");
  const int vocab = model.config.vocab_size;
  const float* last = logits.data() + logits.size() - vocab;
  std::vector<int> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  const int k = std::min(5, vocab);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) {
    return last[a] > last[b] || (last[a] == last[b] && a < b);
  });
  nlohmann::json top = nlohmann::json::array();
  for (int i = 0; i < k; ++i) top.push_back({order[i], last[order[i]]});
  std::printf("%s\n", nlohmann::json{{"top", top}}.dump().c_str());
  return 0;
}

}  // namespace

void AddLogitsCommand(CLI::App& app, int* exit_code) {
  static LogitsOptions o;
  auto* cmd = app.add_subcommand("logits", "Run token ids through a model and write its logits");
  cmd->add_option("--model", o.model, "HF directory, Meta directory or .gguf file")->required();
  cmd->add_option("--tokens", o.tokens, "Comma-separated token ids")->required();
  cmd->add_flag("--all", o.all, "Write every position's logits, not only the last");
  cmd->add_option("--out", o.out, "Output file (float32 little-endian)")->required();
  cmd->add_option("--threads", o.threads, "Threads (0 = all cores)");
  cmd->add_option("--cache-type", o.cache_type,
                  "KV cache element type: f32 (default here: logits is the exact-comparison "
                  "command), f16 (what run / chat / serve use) or bf16");
  cmd->add_option("--numerics", o.numerics, kNumericsHelp);
  cmd->callback([exit_code] { *exit_code = RunLogits(o); });
}

}  // namespace herd::app
