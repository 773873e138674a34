// herd data tokenize / herd data inspect: training data on disk.
//
// Contract (scripts rely on it):
//   herd data tokenize --source NAME --license SPDX --provenance TEXT [--tokenizer PATH]
//                      [--jsonl-field text] [--threads T] [--shard-tokens N] [--bos] [--force]
//                      --out DIR FILES...
//     text files (one document each) and .jsonl files (one document per line) -> token shards in
//     DIR (format: src/train/shards.h). Progress and the summary go to stderr; exit 1 with a
//     message naming file and line on bad input. DIR must be empty or absent unless --force.
//   herd data inspect DIR_OR_MIX [--allow-license X]... [--verify] [--card]
//     a shard directory: one line per shard and the totals; a mix file: validates it (licence
//     policy, one tokenizer) and prints each source; --card prints the data card JSON on stdout;
//     --verify re-hashes every shard file and checks every id against the vocabulary.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/herd/commands.h"
#include "base/paths.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "tokenizer/load.h"
#include "train/data_card.h"
#include "train/license.h"
#include "train/mix.h"
#include "train/tokenize_corpus.h"

namespace herd::app {
namespace {

int Error(const std::string& message) {
  std::fprintf(stderr, "herd: %s\n", message.c_str());
  return 1;
}

// A one-line progress bar on stderr, redrawn in place when stderr is a terminal; silent otherwise
// (logs get the summary line only).
class ProgressBar {
 public:
  ProgressBar() : tty_(::isatty(2)) {}
  void Update(const TokenizeProgress& p) {
    if (!tty_) return;
    const double frac = p.bytes_total ? double(p.bytes_done) / double(p.bytes_total) : 1.0;
    const int width = 30, filled = static_cast<int>(frac * width);
    const double secs = timer_.Seconds();
    std::fprintf(stderr, "\rherd: [%s%s] %3.0f%%  %.1f MB/s  %llu documents  %llu tokens ",
                 std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                 frac * 100, secs > 0 ? double(p.bytes_done) / secs / 1e6 : 0.0,
                 static_cast<unsigned long long>(p.documents),
                 static_cast<unsigned long long>(p.tokens));
    drawn_ = true;
  }
  void Done() {
    if (drawn_) std::fputc('\n', stderr);
  }

 private:
  bool tty_, drawn_ = false;
  Timer timer_;
};

struct TokenizeArgs {
  TokenizeCorpusOptions corpus;
  std::string tokenizer;
  int threads = 0;
};

int RunTokenize(TokenizeArgs& a) {
  TokenizeCorpusOptions& o = a.corpus;
  if (o.source.empty()) return Error("--source must not be empty");
  if (o.license.empty()) return Error("--license must name an SPDX licence (e.g. CC0-1.0)");
  if (Status st = CheckLicense(o.license); !st.ok())
    std::fprintf(stderr,
                 "herd: warning: %s\nherd: warning: a mix will refuse these shards unless "
                 "trained with --allow-license\n",
                 st.message().c_str());
  if (o.shard_tokens == 0) return Error("--shard-tokens must be positive");
  const std::string path = a.tokenizer.empty() ? DefaultLlama3TokenizerPath() : a.tokenizer;
  auto tok = LoadTokenizer(path);
  if (!tok.ok()) {
    Error(tok.status().message());
    if (a.tokenizer.empty())
      Error("(no --tokenizer given; run scripts/setup to fetch the default)");
    return 1;
  }
  for (const auto& w : tok->warnings()) std::fprintf(stderr, "herd: warning: %s\n", w.c_str());
  ThreadPool pool(a.threads);
  ProgressBar bar;
  Timer timer;
  auto report = TokenizeCorpus(*tok, o, &pool, [&](const TokenizeProgress& p) { bar.Update(p); });
  bar.Done();
  if (!report.ok()) return Error(report.status().message());
  const double secs = timer.Seconds();
  std::fprintf(stderr,
               "herd: %s: %zu shard%s, %llu documents, %llu tokens (eos after each document) from "
               "%llu bytes in %.2f s (%.1f MB/s, %.0f tokens/s)\n",
               o.out_dir.c_str(), report->shards.size(), report->shards.size() == 1 ? "" : "s",
               static_cast<unsigned long long>(report->documents),
               static_cast<unsigned long long>(report->tokens),
               static_cast<unsigned long long>(report->bytes), secs, report->bytes / secs / 1e6,
               report->tokens / secs);
  if (report->skipped_empty)
    std::fprintf(stderr, "herd: skipped %llu empty documents\n",
                 static_cast<unsigned long long>(report->skipped_empty));
  return 0;
}

struct InspectArgs {
  std::string path;
  std::vector<std::string> allow_license;
  bool verify = false, card = false;
};

int InspectShardDir(const InspectArgs& a) {
  auto shards = OpenShardDir(a.path);
  if (!shards.ok()) return Error(shards.status().message());
  uint64_t docs = 0, tokens = 0;
  for (const Shard& s : *shards) {
    const ShardHeader& h = s.header();
    std::printf("%s  source=%s  license=%s  documents=%llu  tokens=%llu  inputs=%zu\n",
                std::filesystem::path(s.path()).filename().c_str(), h.source.c_str(),
                h.license.c_str(), static_cast<unsigned long long>(h.documents),
                static_cast<unsigned long long>(h.tokens), h.inputs.size());
    docs += h.documents;
    tokens += h.tokens;
    if (a.verify) {
      if (Status st = s.Verify(); !st.ok()) return Error(st.message());
    }
  }
  const ShardHeader& h = shards->front().header();
  std::printf("total: %zu shards, %llu documents, %llu tokens\n", shards->size(),
              static_cast<unsigned long long>(docs), static_cast<unsigned long long>(tokens));
  std::printf("provenance: %s\ntokenizer: %s (sha256 %s, fingerprint %s, vocab %lld, eos %d%s)\n",
              h.provenance.c_str(), h.tokenizer_path.c_str(), h.tokenizer_sha256.c_str(),
              h.tokenizer_fingerprint.c_str(), static_cast<long long>(h.vocab_size), h.eos_id,
              h.bos ? fmt::format(", bos {} first", h.bos_id).c_str() : "");
  if (Status st = CheckLicense(h.license, {a.allow_license}); !st.ok())
    std::printf("licence policy: refused: %s\n", st.message().c_str());
  if (a.verify) std::printf("verified: hashes and ids of every shard\n");
  return 0;
}

int InspectMix(const InspectArgs& a) {
  MixOptions options;
  options.licenses.extra_allowed = a.allow_license;
  auto mix = DataMix::OpenFile(a.path, options);
  if (!mix.ok()) return Error(mix.status().message());
  if (a.verify)
    for (const MixSource& src : mix->sources())
      for (const Shard& s : src.shards)
        if (Status st = s.Verify(); !st.ok()) return Error(st.message());
  if (a.card) {
    std::fputs(BuildDataCard(*mix, nullptr).c_str(), stdout);
    return 0;
  }
  std::printf("mix %s: seed %llu, tokenizer fingerprint %s\n", a.path.c_str(),
              static_cast<unsigned long long>(mix->seed()), mix->tokenizer_fingerprint().c_str());
  for (const MixSource& src : mix->sources())
    std::printf(
        "  %-16s weight=%g (p=%.3f)  license=%s  shards=%zu  documents=%llu  "
        "tokens=%llu  dir=%s\n",
        src.name.c_str(), src.weight, src.probability, src.shards.front().header().license.c_str(),
        src.shards.size(), static_cast<unsigned long long>(src.documents),
        static_cast<unsigned long long>(src.tokens), src.dir.c_str());
  return 0;
}

}  // namespace

void AddDataCommand(CLI::App& app, int* exit_code) {
  static TokenizeArgs tokenize_storage;  // options outlive parsing: one per process
  static InspectArgs inspect_storage;
  TokenizeArgs* t = &tokenize_storage;
  InspectArgs* in = &inspect_storage;
  CLI::App* data = app.add_subcommand("data", "Training data: token shards and data mixes");
  data->require_subcommand(1);

  CLI::App* tok = data->add_subcommand(
      "tokenize", "Text files (one document each) or .jsonl files (one per line) -> token shards");
  tok->add_option("--source", t->corpus.source, "Source name recorded in the headers")->required();
  tok->add_option("--license", t->corpus.license, "SPDX licence id of the text (e.g. CC-PDDC)")
      ->required();
  tok->add_option("--provenance", t->corpus.provenance, "Where the text came from (free text)")
      ->required();
  tok->add_option("--tokenizer", t->tokenizer,
                  "tokenizer.model, tokenizer.json, .gguf or model directory (default: the Llama 3 "
                  "tokenizer installed by scripts/setup)");
  tok->add_option("--jsonl-field", t->corpus.jsonl_field, "Field holding the text in .jsonl lines")
      ->capture_default_str();
  tok->add_option("--threads", t->threads, "Encoding threads (0 = all)");
  tok->add_option("--shard-tokens", t->corpus.shard_tokens,
                  "Start a new shard once one holds this many tokens")
      ->capture_default_str();
  tok->add_flag("--bos", t->corpus.bos, "Prepend the tokenizer's bos to every document");
  tok->add_flag("--force", t->corpus.force, "Replace the shards of a non-empty --out directory");
  tok->add_option("--out", t->corpus.out_dir, "Output directory")->required();
  tok->add_option("files", t->corpus.inputs, "Input files (.jsonl: one document per line)")
      ->required();
  tok->callback([t, exit_code] { *exit_code = RunTokenize(*t); });

  CLI::App* ins =
      data->add_subcommand("inspect", "Print the headers of a shard directory or a mix summary");
  ins->add_option("path", in->path, "Shard directory or mix file (JSON)")->required();
  ins->add_option("--allow-license", in->allow_license, "Also allow this licence (repeatable)");
  ins->add_flag("--verify", in->verify, "Re-hash every shard file and check every id");
  ins->add_flag("--card", in->card, "Mix: print the data card JSON on stdout");
  ins->callback([in, exit_code] {
    std::error_code ec;
    *exit_code =
        std::filesystem::is_directory(in->path, ec) ? InspectShardDir(*in) : InspectMix(*in);
  });
}

}  // namespace herd::app
