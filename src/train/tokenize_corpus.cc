#include "train/tokenize_corpus.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/thread_pool.h"
#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "train/sha256.h"
#include "train/shard_writer.h"

namespace herd {
namespace {

namespace fs = std::filesystem;

// Where the first invalid UTF-8 byte of `text` is, or npos.
size_t FirstInvalidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    const size_t n = unicode::DecodeUtf8(text, i, &cp);
    if (n == 1 && cp >= 0x80) return i;  // a single invalid byte decodes as U+DC80..U+DCFF
    i += n;
  }
  return std::string_view::npos;
}

// Documents waiting to be encoded, with the input file each came from.
struct Pending {
  std::vector<std::string> docs;
  std::vector<int> input;
  uint64_t text_bytes = 0, file_bytes = 0;
};

class Run {
 public:
  Run(const Tokenizer& tok, const TokenizeCorpusOptions& o, ThreadPool* pool,
      const std::function<void(const TokenizeProgress&)>& progress, ShardWriter* writer)
      : tok_(tok), o_(o), pool_(pool), progress_(progress), writer_(writer) {}

  Status AddFile(const std::string& path, uint64_t bytes_total);
  Status Flush();
  TokenizeReport report;

 private:
  Status AddDocument(std::string doc, int input, uint64_t file_bytes);
  Status AddJsonl(std::string_view text, const std::string& path, int input);

  const Tokenizer& tok_;
  const TokenizeCorpusOptions& o_;
  ThreadPool* pool_;
  const std::function<void(const TokenizeProgress&)>& progress_;
  ShardWriter* writer_;
  Pending pending_;
  TokenizeProgress state_;
};

Status Run::AddDocument(std::string doc, int input, uint64_t file_bytes) {
  pending_.file_bytes += file_bytes;
  if (doc.empty()) {
    ++report.skipped_empty;
    return Status::Ok();
  }
  pending_.text_bytes += doc.size();
  pending_.docs.push_back(std::move(doc));
  pending_.input.push_back(input);
  return pending_.text_bytes >= o_.batch_bytes ? Flush() : Status::Ok();
}

Status Run::AddJsonl(std::string_view text, const std::string& path, int input) {
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    const uint64_t consumed = eol - pos + (eol < text.size());
    pos = eol + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
      pending_.file_bytes += consumed;
      continue;
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      const size_t bad = FirstInvalidUtf8(line);
      if (bad != std::string_view::npos)
        return Status::Errorf("{}:{}: invalid UTF-8 at column {}", path, line_no, bad + 1);
      return Status::Errorf("{}:{}: invalid JSON at column {}", path, line_no, e.byte);
    }
    if (j.is_object()) {
      if (!j.contains(o_.jsonl_field))
        return Status::Errorf("{}:{}: no \"{}\" field", path, line_no, o_.jsonl_field);
      j = j[o_.jsonl_field];
    }
    if (!j.is_string())
      return Status::Errorf("{}:{}: \"{}\" must be a JSON string (or the line a string), got {}",
                            path, line_no, o_.jsonl_field, j.type_name());
    HERD_RETURN_IF_ERROR(AddDocument(j.get<std::string>(), input, consumed));
  }
  return Status::Ok();
}

Status Run::AddFile(const std::string& path, uint64_t bytes_total) {
  state_.bytes_total = bytes_total;
  HERD_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  const std::string_view text = file->view();
  const int input = writer_->AddInput({path, Sha256Hex(text), text.size(), 0});
  report.bytes += text.size();
  if (path.ends_with(".jsonl")) return AddJsonl(text, path, input);
  if (const size_t bad = FirstInvalidUtf8(text); bad != std::string_view::npos) {
    const size_t line_start = text.rfind('\n', bad == 0 ? 0 : bad - 1);
    const size_t column =
        line_start == std::string_view::npos || bad == 0 ? bad + 1 : bad - line_start;
    const size_t line = 1 + std::count(text.begin(), text.begin() + bad, '\n');
    return Status::Errorf("{}:{}: invalid UTF-8 at column {} (byte offset {})", path, line, column,
                          bad);
  }
  return AddDocument(std::string(text), input, text.size());
}

Status Run::Flush() {
  if (pending_.docs.empty() && pending_.file_bytes == 0) return Status::Ok();
  std::vector<std::string_view> views(pending_.docs.begin(), pending_.docs.end());
  const auto ids = tok_.EncodeBatch(views, {}, pool_);  // no bos, no special-token parsing
  for (size_t d = 0; d < ids.size(); ++d)
    HERD_RETURN_IF_ERROR(writer_->AddDocument(ids[d], pending_.input[d]));
  state_.bytes_done += pending_.file_bytes;
  state_.documents = writer_->documents();
  state_.tokens = writer_->tokens();
  pending_ = Pending();
  if (progress_) progress_(state_);
  return Status::Ok();
}

void RemoveShards(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().starts_with("shard-")) fs::remove(e.path(), ec);
}

}  // namespace

int32_t EndOfDocumentId(const Tokenizer& tok) {
  if (auto id = tok.SpecialId("<|end_of_text|>")) return *id;
  return tok.eos_id();
}

Result<TokenizeReport> TokenizeCorpus(
    const Tokenizer& tok, const TokenizeCorpusOptions& o, ThreadPool* pool,
    const std::function<void(const TokenizeProgress&)>& progress) {
  if (o.inputs.empty()) return Status::Error("no input files");
  uint64_t bytes_total = 0;
  for (const auto& in : o.inputs) {
    std::error_code ec;
    if (!fs::is_regular_file(in, ec)) return Status::Errorf("{}: no such file", in);
    bytes_total += fs::file_size(in, ec);
  }
  ShardHeader meta;
  meta.source = o.source;
  meta.license = o.license;
  meta.provenance = o.provenance;
  HERD_ASSIGN_OR_RETURN(meta.tokenizer_sha256, Sha256File(tok.source()));
  meta.tokenizer_fingerprint = TokenizerFingerprint(tok);
  meta.tokenizer_path = tok.source();
  meta.vocab_size = tok.vocab_size();
  meta.bos_id = tok.bos_id();
  meta.eos_id = EndOfDocumentId(tok);
  meta.bos = o.bos;
  HERD_ASSIGN_OR_RETURN(auto writer, ShardWriter::Create(o.out_dir, meta, o.shard_tokens));
  HERD_RETURN_IF_ERROR(PrepareShardDir(o.out_dir, o.force));
  Run run(tok, o, pool, progress, writer.get());
  auto write_all = [&]() -> Result<std::vector<std::string>> {
    for (const auto& in : o.inputs) HERD_RETURN_IF_ERROR(run.AddFile(in, bytes_total));
    HERD_RETURN_IF_ERROR(run.Flush());
    HERD_ASSIGN_OR_RETURN(auto shards, writer->Finish());
    if (shards.empty())
      return Status::Errorf("no documents in the input ({} empty)", run.report.skipped_empty);
    return shards;
  };
  auto shards = write_all();
  if (!shards.ok()) {
    writer.reset();  // closes the open .bin before it is removed
    RemoveShards(o.out_dir);
    return shards.status();
  }
  run.report.shards = std::move(shards).value();
  run.report.documents = writer->documents();
  run.report.tokens = writer->tokens();
  return run.report;
}

}  // namespace herd
