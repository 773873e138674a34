// Writes token shards (format in shards.h): documents in, shard-NNNNN.{bin,idx,json} out.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "train/sha256.h"
#include "train/shards.h"

namespace herd {

// Makes `dir` ready for new shards: creates it if missing. A directory holding anything is refused
// unless `force`, which deletes its shard-* files (and only those) first.
Status PrepareShardDir(const std::string& dir, bool force);

class ShardWriter {
 public:
  // `meta` supplies source, license, provenance, the tokenizer fields and bos; the counts, file
  // names and inputs are filled in here. A shard is closed once it holds >= shard_tokens tokens.
  static Result<std::unique_ptr<ShardWriter>> Create(std::string dir, ShardHeader meta,
                                                     uint64_t shard_tokens);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Registers an input file (path, sha256, bytes); returns its index for AddDocument.
  int AddInput(ShardInput input);
  // Writes one document: [bos if meta.bos] + ids + [eos]. Ids must be in [0, vocab_size).
  Status AddDocument(std::span<const int32_t> ids, int input);
  // Closes the last shard. Returns the header paths of all shards written, in order.
  Result<std::vector<std::string>> Finish();

  uint64_t documents() const { return total_documents_; }
  uint64_t tokens() const { return total_tokens_; }

 private:
  ShardWriter() = default;
  Status OpenShard();
  Status CloseShard();
  Status Write(const uint32_t* ids, size_t n);

  std::string dir_;
  ShardHeader meta_;
  uint64_t shard_tokens_ = 0;
  std::vector<ShardInput> inputs_;

  // The open shard.
  int index_ = 0;
  FILE* bin_ = nullptr;
  Sha256 bin_hash_;
  std::vector<uint64_t> offsets_;
  std::vector<uint64_t> input_docs_;  // per input: documents in this shard

  std::vector<std::string> written_;
  uint64_t total_documents_ = 0, total_tokens_ = 0;
  std::vector<uint32_t> scratch_;
};

}  // namespace herd
