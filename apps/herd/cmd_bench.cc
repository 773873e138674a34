// herd bench --model PATH [--prompt-tokens 512] [--gen-tokens 128] [--depth N] [--threads T]
//            [--reps 5] [--seed 1] [--ctx N] [--json]
// Inference throughput the way llama.cpp's llama-bench measures it, so the two compare directly:
//   * ppN ("prompt processing"): one Forward call on N prompt tokens (batched prefill, logits of
//   the
//     last token only) into a KV cache holding `depth` positions;
//   * tgN ("token generation"): N Forward calls of one token each, from `depth` positions.
//     The tokens fed are drawn up front (no sampling inside the timed loop; a decode step costs the
//     same whatever the id, which is why llama-bench feeds random ids too).
// Token ids are random over the whole vocabulary (std::mt19937 seeded with --seed, id = draw %
// vocab: the same ids on every platform). With --depth D the first D positions are prefilled once,
// untimed, in chunks of 512, and every rep truncates the cache back to D; the test names gain " @
// dD". Each test runs once untimed (warm-up: page faults of the mapped weights, thread start-up,
// caches), then --reps times; the reported figure is the mean ± sample standard deviation of the
// per-rep tokens/s (llama-bench's statistic). --prompt-tokens 0 / --gen-tokens 0 skips that test.
//
// Contract (scripts rely on it): with --json, stdout is exactly one JSON object
//   {"model": PATH, "threads": T, "results": [{"test": "pp512", "tokens_per_second":
//    {"mean": M, "stddev": S, "samples": [...]}, "n_prompt", "n_gen", "n_tokens", "depth", "reps",
//    "seconds": {...}}, ...], "isa", "weights_bytes", "params", "dtypes", "config", "ctx", "seed"};
// without it, a table. Progress and the memory plan go to stderr.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "apps/herd/commands.h"
#include "apps/herd/model_common.h"
#include "base/cpu.h"
#include "base/paths.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "model/forward.h"

namespace herd::app {
namespace {

struct BenchOptions {
  std::string model, cache_type = "f16";
  int prompt_tokens = 512, gen_tokens = 128, depth = 0, threads = 0, reps = 5, ctx = 0;
  uint32_t seed = 1;
  bool json = false;
};

// Depth is prefilled in chunks this size, as a serving loop would (bounds activation memory).
constexpr int kDepthChunk = 512;

struct Stats {
  double mean = 0, stddev = 0;
};

// Mean and sample standard deviation (n - 1; 0 for a single sample).
Stats MeanStddev(const std::vector<double>& x) {
  Stats s;
  if (x.empty()) return s;
  for (double v : x) s.mean += v;
  s.mean /= x.size();
  if (x.size() < 2) return s;
  double ss = 0;
  for (double v : x) ss += (v - s.mean) * (v - s.mean);
  s.stddev = std::sqrt(ss / (x.size() - 1));
  return s;
}

struct TestResult {
  std::string name;
  int n_prompt = 0, n_gen = 0, depth = 0;
  std::vector<double> seconds, tokens_per_second;  // one per timed rep
};

// What runs the tests: the model, one cache sized for depth + the longest test, the thread pool.
class Bench {
 public:
  Bench(const Model& model, const BenchOptions& o, int ctx, DType cache_type)
      : model_(model), o_(o), cache_(model.config, ctx, cache_type), pool_(o.threads) {}

  ThreadPool& pool() { return pool_; }

  // Prefills `depth` random positions once; tests truncate back to them.
  Status Prefill(std::mt19937& rng) {
    std::vector<int> ids = RandomIds(o_.depth, rng);
    for (int i = 0; i < o_.depth; i += kDepthChunk) {
      const int n = std::min(kDepthChunk, o_.depth - i);
      HERD_RETURN_IF_ERROR(Forward(model_, std::span<const int>(ids).subspan(i, n), &cache_, false,
                                   &logits_, &pool_));
    }
    return Status::Ok();
  }

  // One test: n_prompt tokens in one call (pp) or n_gen calls of one token (tg).
  Result<TestResult> Run(int n_prompt, int n_gen, std::mt19937& rng) {
    TestResult r;
    r.n_prompt = n_prompt;
    r.n_gen = n_gen;
    r.depth = o_.depth;
    r.name = n_prompt > 0 ? fmt::format("pp{}", n_prompt) : fmt::format("tg{}", n_gen);
    if (o_.depth > 0) r.name += fmt::format(" @ d{}", o_.depth);
    const int n = n_prompt > 0 ? n_prompt : n_gen;
    for (int rep = -1; rep < o_.reps; ++rep) {  // rep -1: warm-up
      const std::vector<int> ids = RandomIds(n, rng);
      cache_.Truncate(o_.depth);
      Timer timer;
      if (n_prompt > 0) {
        HERD_RETURN_IF_ERROR(Forward(model_, ids, &cache_, false, &logits_, &pool_));
      } else {
        for (int i = 0; i < n_gen; ++i)
          HERD_RETURN_IF_ERROR(Forward(model_, std::span<const int>(ids).subspan(i, 1), &cache_,
                                       false, &logits_, &pool_));
      }
      const double s = timer.Seconds();
      std::fprintf(stderr, "herd: bench %s %s: %.3f s, %.2f tokens/s\n", r.name.c_str(),
                   rep < 0 ? "warm-up" : fmt::format("rep {}/{}", rep + 1, o_.reps).c_str(), s,
                   n / s);
      if (rep < 0) continue;
      r.seconds.push_back(s);
      r.tokens_per_second.push_back(n / s);
    }
    return r;
  }

 private:
  std::vector<int> RandomIds(int n, std::mt19937& rng) const {
    std::vector<int> ids(n);
    for (int& id : ids) id = static_cast<int>(rng() % model_.config.vocab_size);
    return ids;
  }

  const Model& model_;
  const BenchOptions& o_;
  KVCache cache_;
  ThreadPool pool_;
  std::vector<float> logits_;
};

// Weight bytes per dtype name (a tied output counts once) and the parameter count.
struct WeightMix {
  std::map<std::string, uint64_t> bytes;
  uint64_t total_bytes = 0, params = 0;
};

WeightMix DescribeWeights(const Model& model) {
  WeightMix m;
  ForEachTensor(model.weights, [&](const TensorId&, const Weight& w) {
    m.bytes[std::string(Name(w.dtype))] += w.n_bytes();
    m.total_bytes += w.n_bytes();
    m.params += static_cast<uint64_t>(w.numel());
  });
  return m;
}

// "q4_1 93%, f32 7%": dtypes by share of the weight bytes, largest first.
std::string DtypeMix(const WeightMix& m) {
  std::vector<std::pair<uint64_t, std::string>> v;
  for (const auto& [name, b] : m.bytes) v.push_back({b, name});
  std::sort(v.rbegin(), v.rend());
  std::string s;
  for (const auto& [b, name] : v) {
    const double pct = 100.0 * b / m.total_bytes;
    s += fmt::format("{}{} {}", s.empty() ? "" : ", ", name,
                     pct < 1 ? std::string("<1%") : fmt::format("{:.0f}%", pct));
  }
  return s;
}

std::string FormatParams(uint64_t n) {
  if (n >= 1000000000ull) return fmt::format("{:.2f} B", n / 1e9);
  if (n >= 1000000ull) return fmt::format("{:.2f} M", n / 1e6);
  return fmt::format("{:.2f} K", n / 1e3);
}

void PrintTable(const std::string& model_path, const WeightMix& mix, int threads,
                const std::vector<TestResult>& results) {
  const std::vector<std::string> head = {"model",   "size", "params", "dtype",
                                         "threads", "test", "t/s"};
  const std::vector<bool> right = {false, true, true, false, true, false, true};
  std::vector<std::vector<std::string>> rows;
  for (const TestResult& r : results) {
    const Stats s = MeanStddev(r.tokens_per_second);
    rows.push_back({model_path, fmt::format("{:.2f} GiB", mix.total_bytes / double(1ull << 30)),
                    FormatParams(mix.params), DtypeMix(mix), std::to_string(threads), r.name,
                    fmt::format("{:.2f} ± {:.2f}", s.mean, s.stddev)});
  }
  // Column widths in characters ("±" is two bytes of UTF-8 but one column).
  auto width = [](const std::string& s) {
    return static_cast<int>(std::count_if(
        s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
  };
  std::vector<int> w(head.size());
  for (size_t c = 0; c < head.size(); ++c) {
    w[c] = width(head[c]);
    for (const auto& row : rows) w[c] = std::max(w[c], width(row[c]));
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line = "|";
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string pad(w[c] - width(row[c]), ' ');
      line += " " + (right[c] ? pad + row[c] : row[c] + pad) + " |";
    }
    std::printf("%s\n", line.c_str());
  };
  print_row(head);
  std::string rule = "|";
  for (size_t c = 0; c < head.size(); ++c)
    rule += " " + (right[c] ? std::string(w[c] - 1, '-') + ":" : std::string(w[c], '-')) + " |";
  std::printf("%s\n", rule.c_str());
  for (const auto& row : rows) print_row(row);
}

nlohmann::json ToJson(const std::string& model_path, const Model& model, const WeightMix& mix,
                      int threads, int ctx, const BenchOptions& o,
                      const std::vector<TestResult>& results) {
  nlohmann::json out = {{"model", model_path},
                        {"threads", threads},
                        {"isa", IsaName(ActiveIsa())},
                        {"weights_bytes", mix.total_bytes},
                        {"params", mix.params},
                        {"dtypes", mix.bytes},
                        {"config", model.config.Describe()},
                        {"ctx", ctx},
                        {"cache_type", o.cache_type},
                        {"seed", o.seed},
                        {"results", nlohmann::json::array()}};
  for (const TestResult& r : results) {
    const Stats tps = MeanStddev(r.tokens_per_second), sec = MeanStddev(r.seconds);
    out["results"].push_back(
        {{"test", r.name},
         {"n_prompt", r.n_prompt},
         {"n_gen", r.n_gen},
         {"n_tokens", r.n_prompt + r.n_gen},
         {"depth", r.depth},
         {"reps", r.tokens_per_second.size()},
         {"tokens_per_second",
          {{"mean", tps.mean}, {"stddev", tps.stddev}, {"samples", r.tokens_per_second}}},
         {"seconds", {{"mean", sec.mean}, {"stddev", sec.stddev}, {"samples", r.seconds}}}});
  }
  return out;
}

int RunBench(const BenchOptions& o) {
  if (o.prompt_tokens < 0 || o.gen_tokens < 0 || o.depth < 0)
    return Fail("--prompt-tokens, --gen-tokens and --depth must be >= 0");
  if (o.prompt_tokens == 0 && o.gen_tokens == 0)
    return Fail("nothing to run: --prompt-tokens and --gen-tokens are both 0");
  if (o.reps < 1) return Fail("--reps must be at least 1");
  if (o.threads < 0) return Fail("--threads must be >= 0 (0 = all cores)");
  const int64_t need = int64_t{o.depth} + std::max(o.prompt_tokens, o.gen_tokens);
  if (need > (1 << 30)) return Fail("--depth plus the test's tokens is too large");
  if (o.ctx > 0 && o.ctx < need)
    return Fail(fmt::format(
        "--ctx {} is too small: the cache must hold --depth {} + {} tokens = {} positions", o.ctx,
        o.depth, std::max(o.prompt_tokens, o.gen_tokens), need));
  const int ctx = o.ctx > 0 ? o.ctx : static_cast<int>(need);
  std::string path = o.model;
  if (path.empty()) {
    path = DefaultModelPath();
    std::fprintf(stderr, "herd: no --model given; using the default model %s\n", path.c_str());
  }
  const auto cache_type = ParseCacheTypeFlag(o.cache_type);
  if (!cache_type) return 1;
  auto loaded = LoadForInference(path, ctx, *cache_type, false, false);
  if (!loaded) return 1;
  const Model& model = loaded->model;
  if (need > model.config.max_seq_len)
    std::fprintf(stderr,
                 "herd: warning: %lld positions exceed the model's trained context of %d (the "
                 "timing is still meaningful)\n",
                 static_cast<long long>(need), model.config.max_seq_len);

  Bench bench(model, o, ctx, *cache_type);
  const int threads = bench.pool().size();
  std::fprintf(stderr, "herd: bench: %d threads, isa %s, %d reps, seed %u\n", threads,
               IsaName(ActiveIsa()), o.reps, o.seed);
  std::mt19937 rng(o.seed);
  if (o.depth > 0) {
    Timer timer;
    Status st = bench.Prefill(rng);
    if (!st.ok()) return Fail(st.message());
    std::fprintf(stderr, "herd: bench: prefilled depth %d in %.2f s\n", o.depth, timer.Seconds());
  }
  std::vector<TestResult> results;
  for (const auto& [n_prompt, n_gen] : {std::pair{o.prompt_tokens, 0}, {0, o.gen_tokens}}) {
    if (n_prompt + n_gen == 0) continue;
    auto r = bench.Run(n_prompt, n_gen, rng);
    if (!r.ok()) return Fail(r.status().message());
    results.push_back(std::move(r).value());
  }

  const WeightMix mix = DescribeWeights(model);
  if (o.json) {
    std::printf("%s\n", ToJson(path, model, mix, threads, ctx, o, results).dump().c_str());
  } else {
    PrintTable(path, mix, threads, results);
  }
  return 0;
}

}  // namespace

void AddBenchCommand(CLI::App& app, int* exit_code) {
  static BenchOptions o;
  auto* cmd = app.add_subcommand(
      "bench",
      "Measure prompt processing (ppN) and token generation (tgN) speed, like llama-bench");
  cmd->add_option("-m,--model", o.model,
                  "HF directory, Meta directory or .gguf file (default: $HERD_MODEL, else the "
                  "SmolLM2-135M-Instruct GGUF scripts/setup installs)");
  cmd->add_option("-p,--prompt-tokens", o.prompt_tokens, "Prompt tokens in one batch (0: skip pp)")
      ->capture_default_str();
  cmd->add_option("-n,--gen-tokens", o.gen_tokens, "Tokens decoded one at a time (0: skip tg)")
      ->capture_default_str();
  cmd->add_option("-d,--depth", o.depth, "Positions already in the KV cache before each test")
      ->capture_default_str();
  cmd->add_option("-t,--threads", o.threads, "Threads (0 = all cores)");
  cmd->add_option("-r,--reps", o.reps, "Timed repetitions per test (after one warm-up)")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of the random token ids")->capture_default_str();
  cmd->add_option("--ctx", o.ctx, "KV cache positions (0: depth + the longest test)");
  cmd->add_option("--cache-type", o.cache_type, kCacheTypeHelp);
  cmd->add_flag("--json", o.json, "Print one JSON object instead of the table");
  cmd->callback([exit_code] { *exit_code = RunBench(o); });
}

}  // namespace herd::app
