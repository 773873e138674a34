// herd tokenize / herd detokenize.
//
// Contract (scripts rely on it):
//   herd tokenize --tokenizer PATH [--bos] [--allow-special]   stdin: raw bytes -> stdout: [ids]
//   (one line) herd detokenize --tokenizer PATH                           stdin: JSON array of ids
//   -> stdout: bytes
// Extras: --jsonl (tokenize: one JSON string, {"text": ...} or {"hex": "..."} for bytes that are
// not UTF-8, per input line -> one [ids] per output line, documents encoded in parallel;
// detokenize: one [ids] per line -> one JSON string per line), --stats (throughput on stderr).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "apps/herd/commands.h"
#include "base/paths.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "tokenizer/load.h"

namespace herd::app {

namespace {

std::string ReadAll(FILE* f) {
  std::string data;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) data.append(buf, n);
  return data;
}

std::optional<std::string> FromHex(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int v = 0;
    for (char c : hex.substr(i, 2)) {
      const int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (d < 0) return std::nullopt;
      v = v * 16 + d;
    }
    out.push_back(static_cast<char>(v));
  }
  return out;
}

// Parses a JSON array of token ids; on error prints one line naming `where` and returns nullopt.
std::optional<std::vector<int32_t>> ParseIds(std::string_view text, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    std::fprintf(stderr, "herd: %s: invalid JSON at byte %zu\n", where.c_str(),
                 static_cast<size_t>(e.byte));
    return std::nullopt;
  }
  if (!j.is_array()) {
    std::fprintf(stderr, "herd: %s: expected a JSON array of token ids\n", where.c_str());
    return std::nullopt;
  }
  std::vector<int32_t> ids;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number_integer() || j[i].get<int64_t>() < INT32_MIN ||
        j[i].get<int64_t>() > INT32_MAX) {
      std::fprintf(stderr, "herd: %s: element %zu is not a token id: %s\n", where.c_str(), i,
                   j[i].dump().c_str());
      return std::nullopt;
    }
    ids.push_back(static_cast<int32_t>(j[i].get<int64_t>()));
  }
  return ids;
}

void WriteIds(const std::vector<int32_t>& ids, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out->append(", ");
    out->append(std::to_string(ids[i]));
  }
  out->append("]\n");
}

std::optional<Tokenizer> Load(const std::string& path) {
  auto tok = LoadTokenizer(path.empty() ? DefaultLlama3TokenizerPath() : path);
  if (!tok.ok()) {
    std::fprintf(stderr, "herd: %s\n", tok.status().message().c_str());
    if (path.empty())
      std::fprintf(stderr,
                   "herd: (no --tokenizer given; run scripts/setup to fetch the default)\n");
    return std::nullopt;
  }
  for (const auto& w : tok->warnings()) std::fprintf(stderr, "herd: warning: %s\n", w.c_str());
  return std::move(tok).value();
}

struct TokenizeArgs {
  std::string tokenizer;
  bool bos = false, allow_special = false, jsonl = false, stats = false;
  int threads = 0;
};

int RunTokenize(const TokenizeArgs& a) {
  auto tok = Load(a.tokenizer);
  if (!tok) return 1;
  EncodeOptions opts;
  opts.add_bos = a.bos;
  opts.allow_all_special = a.allow_special;
  const std::string input = ReadAll(stdin);
  Timer timer;
  std::string out;
  size_t n_tokens = 0;
  if (!a.jsonl) {
    auto ids = tok->Encode(input, opts);
    n_tokens = ids.size();
    WriteIds(ids, &out);
  } else {
    std::vector<std::string> docs;
    size_t line_no = 0;
    for (size_t pos = 0; pos < input.size();) {
      size_t eol = input.find('\n', pos);
      if (eol == std::string::npos) eol = input.size();
      std::string_view line(input.data() + pos, eol - pos);
      pos = eol + 1;
      ++line_no;
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      std::optional<std::string> doc;
      if (j.is_object() && j.contains("hex") && j["hex"].is_string()) {
        doc = FromHex(j["hex"].get<std::string>());
      } else {
        if (j.is_object() && j.contains("text")) j = j["text"];
        if (j.is_string()) doc = j.get<std::string>();
      }
      if (!doc) {
        std::fprintf(stderr,
                     "herd: stdin:%zu: expected a JSON string, {\"text\": string} or {\"hex\": "
                     "even-length hex}\n",
                     line_no);
        return 1;
      }
      docs.push_back(std::move(*doc));
    }
    timer.Reset();
    std::vector<std::string_view> views(docs.begin(), docs.end());
    ThreadPool pool(a.threads);
    auto all = tok->EncodeBatch(views, opts, &pool);
    for (const auto& ids : all) {
      n_tokens += ids.size();
      WriteIds(ids, &out);
    }
  }
  const double secs = timer.Seconds();
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (a.stats)
    std::fprintf(stderr, "herd: %zu bytes -> %zu tokens in %.3f ms: %.0f tokens/s, %.2f MB/s\n",
                 input.size(), n_tokens, secs * 1e3, n_tokens / secs, input.size() / secs / 1e6);
  return 0;
}

int RunDetokenize(const std::string& path, bool jsonl) {
  auto tok = Load(path);
  if (!tok) return 1;
  const std::string input = ReadAll(stdin);
  std::string out;
  size_t line_no = 0;
  for (size_t pos = 0; pos < input.size() || line_no == 0;) {
    size_t eol = jsonl ? input.find('\n', pos) : std::string::npos;
    if (eol == std::string::npos) eol = input.size();
    std::string_view line(input.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (jsonl && line.empty()) continue;
    auto ids = ParseIds(line, jsonl ? "stdin:" + std::to_string(line_no) : "stdin");
    if (!ids) return 1;
    auto text = tok->Decode(*ids);
    if (!text.ok()) {
      std::fprintf(stderr, "herd: %s\n", text.status().message().c_str());
      return 1;
    }
    if (!jsonl) {
      out = std::move(text).value();
      break;
    }
    // JSON strings hold text only: bytes that are not UTF-8 are an error here (use plain mode).
    try {
      out += nlohmann::json(*text).dump() + "\n";
    } catch (const nlohmann::json::type_error&) {
      std::fprintf(
          stderr,
          "herd: stdin:%zu: decoded bytes are not valid UTF-8; use detokenize without --jsonl\n",
          line_no);
      return 1;
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

void AddTokenizeCommand(CLI::App& app, int* exit_code) {
  static TokenizeArgs storage;  // options outlive parsing: one per process
  TokenizeArgs* args = &storage;
  CLI::App* sub =
      app.add_subcommand("tokenize", "Text on stdin -> token ids (JSON array) on stdout");
  sub->add_option("--tokenizer", args->tokenizer,
                  "tokenizer.model, tokenizer.json, .gguf or model directory (default: the Llama 3 "
                  "tokenizer installed by scripts/setup)");
  sub->add_flag("--bos", args->bos, "Prepend <|begin_of_text|>");
  sub->add_flag("--allow-special", args->allow_special,
                "Parse special-token text as special tokens");
  sub->add_flag("--jsonl", args->jsonl,
                "One JSON string (or {\"text\":...}) per line -> one array per line");
  sub->add_option("--threads", args->threads, "Threads for --jsonl (0 = all)");
  sub->add_flag("--stats", args->stats, "Print tokens/s and MB/s on stderr");
  sub->callback([args, exit_code] { *exit_code = RunTokenize(*args); });
}

void AddDetokenizeCommand(CLI::App& app, int* exit_code) {
  static std::string path_storage;
  static bool jsonl_storage = false;
  std::string* path = &path_storage;
  bool* jsonl = &jsonl_storage;
  CLI::App* sub = app.add_subcommand("detokenize", "JSON array of ids on stdin -> bytes on stdout");
  sub->add_option("--tokenizer", *path,
                  "tokenizer.model, tokenizer.json, .gguf or model directory");
  sub->add_flag("--jsonl", *jsonl, "One JSON array per line -> one JSON string per line");
  sub->callback([path, jsonl, exit_code] { *exit_code = RunDetokenize(*path, *jsonl); });
}

}  // namespace herd::app
