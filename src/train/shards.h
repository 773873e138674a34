// Token shards: a tokenized corpus on disk, written by `herd data tokenize` (ShardWriter) and read
// by the training data loader (Shard, OpenShardDir).
//
// A shard directory holds shards named shard-NNNNN (five digits from 00000), three files each:
//   shard-NNNNN.bin   token ids, uint32 little-endian (Llama 3's 128,256 ids need more than 16
//                     bits), documents back to back. Each document is
//                       [bos if header "bos"] + encode_ordinary(text) + [eos]
//                     where eos is the end-of-document token <|end_of_text|> (Llama 3: 128001;
//                     the tokenizer's eos when its vocabulary has no such token). The marker
//                     follows every document, so a model trained on the stream learns where
//                     documents end; the text itself is never parsed for special tokens.
//   shard-NNNNN.idx   document boundaries: documents + 1 uint64 little-endian token offsets into
//                     .bin, from 0 to tokens; document d is tokens [idx[d], idx[d+1]), its eos
//                     (and bos) included.
//   shard-NNNNN.json  the header, written last (a shard without one is incomplete):
//     {"format": "herd-token-shard", "version": 1,
//      "source": "kjv", "license": "CC-PDDC", "provenance": "free text",
//      "tokenizer": {"sha256": sha256 of the tokenizer file, "fingerprint": TokenizerFingerprint,
//                    "path": as given, "vocab_size": 128256, "bos_id": 128000, "eos_id": 128001},
//      "bos": false, "documents": 12, "tokens": 34567,   (tokens: all ids in .bin, markers too)
//      "bin": {"file": "shard-00000.bin", "sha256": ...}, "idx": {"file": ..., "sha256": ...},
//      "inputs": [{"path": "genesis.txt", "sha256": ..., "bytes": 4321, "documents": 1}, ...]}
//     "inputs" lists the input files with documents in this shard: sha256 and size of the whole
//     file, and how many of its documents this shard holds.
// Documents never straddle shards; a shard is closed once it holds at least the requested number
// of tokens, so it may exceed it by one document.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "io/mapped_file.h"

namespace herd {

class Tokenizer;

inline constexpr int kShardFormatVersion = 1;

struct ShardInput {
  std::string path, sha256;
  uint64_t bytes = 0, documents = 0;
};

struct ShardHeader {
  int version = kShardFormatVersion;
  std::string source, license, provenance;
  std::string tokenizer_sha256, tokenizer_fingerprint, tokenizer_path;
  int64_t vocab_size = 0;
  int32_t bos_id = -1, eos_id = -1;
  bool bos = false;
  uint64_t documents = 0, tokens = 0;
  std::string bin_file, bin_sha256, idx_file, idx_sha256;
  std::vector<ShardInput> inputs;
};

std::string ShardHeaderToJson(const ShardHeader& h);  // pretty-printed, newline-terminated
// `where` names the file in errors.
Result<ShardHeader> ParseShardHeader(std::string_view json, const std::string& where);

// "shard-00042" for 42.
std::string ShardName(int index);

// Identifies the ids a tokenizer produces, independent of its file format (a tiktoken file, the
// matching tokenizer.json and GGUF metadata agree): sha256 over the pre-tokenizer's name and every
// token's bytes in id order. bos/eos choices (base vs instruct configs) do not change it.
std::string TokenizerFingerprint(const Tokenizer& tok);

// One shard, opened: header parsed, .bin mapped, .idx read and checked against the header (sizes,
// offsets increasing from 0 to tokens).
class Shard {
 public:
  static Result<Shard> Open(const std::string& json_path);

  const ShardHeader& header() const { return header_; }
  const std::string& path() const { return path_; }  // the .json
  uint64_t n_tokens() const { return header_.tokens; }
  uint64_t n_documents() const { return header_.documents; }
  // documents + 1 offsets, from 0 to n_tokens().
  std::span<const uint64_t> offsets() const { return offsets_; }
  // Copies ids [begin, begin + n) to out; the range must lie inside the shard.
  void Copy(uint64_t begin, uint64_t n, int32_t* out) const;
  // Recomputes the sha256 of .bin and .idx and checks every id is below vocab_size (reads all).
  Status Verify() const;

 private:
  ShardHeader header_;
  std::string path_;
  std::shared_ptr<MappedFile> bin_;
  std::vector<uint64_t> offsets_;
};

// Opens every shard-*.json of `dir` in name order; an error if there are none.
Result<std::vector<Shard>> OpenShardDir(const std::string& dir);

}  // namespace herd
