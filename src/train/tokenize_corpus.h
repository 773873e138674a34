// Text files -> token shards (shards.h): the work behind `herd data tokenize`.
//
// Inputs: a file ending in .jsonl holds one document per line, the string field `jsonl_field`
// (default "text") of a JSON object (a line that is a bare JSON string is also a document); blank
// lines are skipped. Any other file is one document, its whole content. Documents keep their input
// order (files in the order given, lines in order), whatever the thread count.
// Policy for bad input: the run stops at the first invalid UTF-8 byte in a text file, or the first
// JSONL line that is not valid JSON (invalid UTF-8 included), lacks the field, or holds a
// non-string there; the error names the file and line, and the shards written so far are deleted.
// Empty documents are skipped and counted.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "train/shards.h"

namespace herd {

class ThreadPool;
class Tokenizer;

struct TokenizeCorpusOptions {
  std::vector<std::string> inputs;
  std::string out_dir;
  bool force = false;  // replace the shards of a non-empty out_dir
  std::string source, license, provenance;
  std::string jsonl_field = "text";
  uint64_t shard_tokens = uint64_t{1} << 27;  // 512 MiB of ids per shard
  bool bos = false;                           // prepend the tokenizer's bos to every document
  size_t batch_bytes = size_t{8} << 20;       // text encoded per parallel batch
};

struct TokenizeProgress {
  uint64_t bytes_done = 0, bytes_total = 0, documents = 0, tokens = 0;
};

struct TokenizeReport {
  std::vector<std::string> shards;  // header paths
  uint64_t documents = 0, tokens = 0, bytes = 0, skipped_empty = 0;
};

// The end-of-document id: <|end_of_text|> if the vocabulary has it, else the tokenizer's eos.
int32_t EndOfDocumentId(const Tokenizer& tok);

// `pool` runs EncodeBatch; `progress` (optional) is called after each batch.
Result<TokenizeReport> TokenizeCorpus(const Tokenizer& tok, const TokenizeCorpusOptions& options,
                                      ThreadPool* pool,
                                      const std::function<void(const TokenizeProgress&)>& progress);

}  // namespace herd
