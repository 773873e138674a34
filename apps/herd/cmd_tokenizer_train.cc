// herd tokenizer train: a byte-level BPE vocabulary with Llama 3's pre-tokenizer and special
// tokens, trained on text files and written as a tiktoken tokenizer.model (src/tokenizer/
// bpe_train.h describes the algorithm and its tie-break rule).
//
//   herd tokenizer train --vocab-size N --out PATH [--threads T] [--min-frequency F]
//                        [--jsonl-field text] FILES...
//
// A file ending in .jsonl holds one document per line (the string field --jsonl-field of a JSON
// object, or a bare JSON string; blank lines are skipped); any other file is one document. N counts
// the 256 special tokens, which get ids N-256..N-1 (fewer if training stops early).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/herd/commands.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "io/mapped_file.h"
#include "tokenizer/bpe_train.h"
#include "tokenizer/load.h"

namespace herd::app {

namespace {

struct TrainArgs {
  int32_t vocab_size = 0;
  std::string out;
  int threads = 0;
  uint64_t min_frequency = 2;
  std::string jsonl_field = "text";
  std::vector<std::string> files;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "herd: %s\n", message.c_str());
  return 1;
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The documents of one .jsonl file's contents; error names file:line.
Result<std::vector<std::string>> JsonlDocuments(const std::string& contents,
                                                const std::string& path, const std::string& field) {
  std::vector<std::string> docs;
  size_t line_no = 0;
  for (size_t pos = 0; pos < contents.size();) {
    size_t eol = contents.find('\n', pos);
    if (eol == std::string::npos) eol = contents.size();
    std::string_view line(contents.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains(field)) j = j[field];
    if (!j.is_string())
      return Status::Errorf("{}:{}: expected a JSON string or an object with string field \"{}\"",
                            path, line_no, field);
    docs.push_back(j.get<std::string>());
  }
  return docs;
}

int RunTrain(const TrainArgs& a) {
  const int32_t min_vocab = 256 + kBpeTrainSpecialTokens;
  if (a.vocab_size < min_vocab)
    return Fail(fmt::format(
        "--vocab-size {} is too small: it must be at least {} (256 byte tokens + {} special "
        "tokens)",
        a.vocab_size, min_vocab, kBpeTrainSpecialTokens));
  if (a.files.empty()) return Fail("no input files");
  Timer timer;
  ThreadPool pool(a.threads);
  BpeWordCounter counter;
  for (const std::string& path : a.files) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      return Fail(path + ": is a directory, expected a text or .jsonl file");
    auto contents = ReadFileToString(path);
    if (!contents.ok())
      return Fail(fmt::format("cannot read input: {}", contents.status().message()));
    if (EndsWith(path, ".jsonl")) {
      auto docs = JsonlDocuments(*contents, path, a.jsonl_field);
      if (!docs.ok()) return Fail(docs.status().message());
      std::vector<std::string_view> views(docs->begin(), docs->end());
      counter.Add(views, &pool);
    } else {
      std::string_view view(*contents);
      counter.Add(std::span<const std::string_view>(&view, 1), &pool);
    }
    std::fprintf(stderr, "herd: read %s (%zu bytes)\n", path.c_str(), contents->size());
  }
  if (counter.total_bytes() == 0) return Fail("the input files hold no text");
  auto words = counter.Words();
  std::fprintf(stderr, "herd: %llu bytes, %llu pre-tokens, %zu distinct, in %.2f s\n",
               static_cast<unsigned long long>(counter.total_bytes()),
               static_cast<unsigned long long>(counter.total_words()), words.size(),
               timer.Seconds());

  BpeTrainOptions opts;
  opts.vocab_size = a.vocab_size;
  opts.min_frequency = a.min_frequency;
  opts.progress_every = std::max<int32_t>(1000, (a.vocab_size - min_vocab) / 10);
  opts.progress = [](const BpeTrainProgress& p) {
    std::fprintf(stderr, "herd: %d / %d ranks (last pair count %llu)\n", p.ranks, p.target_ranks,
                 static_cast<unsigned long long>(p.best_count));
  };
  auto trained = TrainBpe(words, opts);
  if (!trained.ok()) return Fail(trained.status().message());
  const auto& ranks = trained->ranks;
  if (!trained->stopped_early.empty())
    std::fprintf(stderr,
                 "herd: warning: stopped at %zu ranks (%s), vocabulary is %zu, not the requested "
                 "%d\n",
                 ranks.size(), trained->stopped_early.c_str(),
                 ranks.size() + kBpeTrainSpecialTokens, a.vocab_size);

  const std::string file = TiktokenFile(ranks);
  // Check what we write loads, and measure compression as herd encodes.
  auto data = ParseTiktoken(file, a.out);
  if (!data.ok()) return Fail("internal error: " + data.status().message());
  auto tok = Tokenizer::Create(std::move(data).value());
  if (!tok.ok()) return Fail("internal error: " + tok.status().message());
  uint64_t tokens = 0;
  std::vector<int32_t> ids;
  for (const auto& [w, c] : words) {
    ids.clear();
    tok->EncodeOrdinary(w, &ids);
    tokens += ids.size() * c;
  }

  const std::string tmp = a.out + ".tmp";
  if (const auto dir = std::filesystem::path(a.out).parent_path(); !dir.empty()) {
    std::error_code dir_ec;
    std::filesystem::create_directories(dir, dir_ec);
    if (dir_ec) return Fail(fmt::format("cannot create {}: {}", dir.string(), dir_ec.message()));
  }
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(file.data(), static_cast<std::streamsize>(file.size()));
    f.close();
    if (!f) return Fail(fmt::format("cannot write {}", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, a.out, ec);
  if (ec) return Fail(fmt::format("cannot write {}: {}", a.out, ec.message()));

  std::printf(
      "wrote %s: vocab %d (%zu mergeable ranks + %d special tokens, ids %zu..%zu), %lld merges\n",
      a.out.c_str(), tok->vocab_size(), ranks.size(), kBpeTrainSpecialTokens, ranks.size(),
      ranks.size() + kBpeTrainSpecialTokens - 1, static_cast<long long>(trained->merges));
  std::printf("training text: %llu bytes -> %llu tokens, %.3f bytes/token, in %.2f s\n",
              static_cast<unsigned long long>(counter.total_bytes()),
              static_cast<unsigned long long>(tokens),
              tokens ? double(counter.total_bytes()) / double(tokens) : 0.0, timer.Seconds());
  return 0;
}

}  // namespace

void AddTokenizerCommand(CLI::App& app, int* exit_code) {
  static TrainArgs storage;  // options outlive parsing: one per process
  TrainArgs* a = &storage;
  CLI::App* cmd = app.add_subcommand("tokenizer", "Tokenizer tools");
  cmd->require_subcommand(1);
  CLI::App* train = cmd->add_subcommand(
      "train",
      "Train a byte-level BPE (Llama 3 pre-tokenizer and special tokens) -> tiktoken file");
  train->add_option("--vocab-size", a->vocab_size, "Total vocabulary, incl. 256 special tokens")
      ->required();
  train->add_option("--out", a->out, "Output tokenizer.model (tiktoken format)")->required();
  train->add_option("--threads", a->threads, "Threads for pre-tokenizing (0 = all)");
  train
      ->add_option("--min-frequency", a->min_frequency,
                   "Stop when the most frequent pair occurs fewer times")
      ->capture_default_str();
  train->add_option("--jsonl-field", a->jsonl_field, "Field holding the text in .jsonl lines")
      ->capture_default_str();
  train->add_option("files", a->files, "Text files (one document each) or .jsonl files")
      ->required();
  train->callback([a, exit_code] { *exit_code = RunTrain(*a); });
}

}  // namespace herd::app
