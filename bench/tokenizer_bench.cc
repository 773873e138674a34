// Tokenizer encode throughput on a JSONL corpus ({"text": ...} per line, e.g. from
// tools/build_corpus.py): single-thread Encode over every document, then EncodeBatch over a thread
// pool, each repeated --reps times; prints MB/s (best and mean) as one JSON object per line.
//
//   build/bench/tokenizer_bench --tokenizer ~/.cache/herd/llama3/tokenizer.model --corpus FILE
//       [--threads N] [--reps R] [--max-mb M]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/paths.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "io/mapped_file.h"
#include "tokenizer/load.h"

namespace {

void Report(const char* test, int threads, size_t bytes, size_t tokens,
            const std::vector<double>& secs) {
  double best = *std::min_element(secs.begin(), secs.end()), sum = 0;
  for (double s : secs) sum += s;
  const double mean = sum / secs.size();
  std::printf(
      "{\"test\": \"%s\", \"threads\": %d, \"bytes\": %zu, \"tokens\": %zu, \"mb_per_s_best\": "
      "%.2f, "
      "\"mb_per_s_mean\": %.2f}\n",
      test, threads, bytes, tokens, bytes / best / 1e6, bytes / mean / 1e6);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string tok_path = herd::DefaultLlama3TokenizerPath(), corpus;
  int threads = 0, reps = 3;
  double max_mb = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--tokenizer"))
      tok_path = argv[i + 1];
    else if (!std::strcmp(argv[i], "--corpus"))
      corpus = argv[i + 1];
    else if (!std::strcmp(argv[i], "--threads"))
      threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps"))
      reps = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--max-mb"))
      max_mb = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (corpus.empty()) {
    std::fprintf(stderr,
                 "usage: tokenizer_bench --corpus FILE.jsonl [--tokenizer PATH] [--threads N] "
                 "[--reps R] [--max-mb M]\n");
    return 2;
  }
  auto data = herd::LoadTokenizerData(tok_path);
  if (!data.ok()) {
    std::fprintf(stderr, "%s\n", data.status().message().c_str());
    return 1;
  }
  // Every repetition gets a fresh tokenizer: its per-thread piece memo starts empty, so a
  // repetition never profits from pieces an earlier one saw (tiktoken has no such memo).
  auto fresh = [&] { return std::move(herd::Tokenizer::Create(*data)).value(); };
  auto file = herd::MappedFile::Open(corpus);
  if (!file.ok()) {
    std::fprintf(stderr, "%s\n", file.status().message().c_str());
    return 1;
  }
  std::vector<std::string> docs;
  size_t bytes = 0;
  std::string_view all = (*file)->view();
  for (size_t pos = 0; pos < all.size();) {
    size_t eol = all.find('\n', pos);
    if (eol == std::string_view::npos) eol = all.size();
    auto j = nlohmann::json::parse(all.substr(pos, eol - pos), nullptr, false);
    pos = eol + 1;
    if (j.is_object() && j.contains("text") && j["text"].is_string()) {
      docs.push_back(j["text"].get<std::string>());
      bytes += docs.back().size();
      if (max_mb > 0 && bytes >= max_mb * 1e6) break;
    }
  }
  std::vector<std::string_view> views(docs.begin(), docs.end());

  std::vector<double> secs;
  size_t tokens = 0;
  std::vector<int32_t> out;
  for (int r = 0; r < reps; ++r) {
    const herd::Tokenizer tok = fresh();
    herd::Timer t;
    tokens = 0;
    for (auto v : views) {
      out.clear();
      tok.EncodeOrdinary(v, &out);
      tokens += out.size();
    }
    secs.push_back(t.Seconds());
  }
  Report("encode_ordinary", 1, bytes, tokens, secs);

  herd::ThreadPool pool(threads);
  secs.clear();
  for (int r = 0; r < reps; ++r) {
    const herd::Tokenizer tok = fresh();
    herd::Timer t;
    auto res = tok.EncodeBatch(views, {}, &pool);
    secs.push_back(t.Seconds());
    tokens = 0;
    for (auto& ids : res) tokens += ids.size();
  }
  Report("encode_ordinary_batch", pool.size(), bytes, tokens, secs);
  return 0;
}
