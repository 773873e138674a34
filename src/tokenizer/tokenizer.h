// The tokenizer: pre-tokenizer + byte-level BPE + special tokens, built from plain data that every
// file format's loader produces (tiktoken .model, HF tokenizer.json, GGUF metadata).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/pretokenize.h"

namespace herd {

class ThreadPool;

enum class TokenType : uint8_t {
  kNormal = 1,  // GGUF token_type values
  kUnknown = 2,
  kControl = 3,      // special tokens: <|begin_of_text|>, <|eot_id|>, ...
  kUserDefined = 4,  // added tokens that are not special
  kUnused = 5,
  kByte = 6,
};

// What a loader produces. Token bytes are raw bytes (byte-level-unicode strings already decoded);
// control and user-defined tokens hold their literal text.
struct TokenizerData {
  std::vector<std::string> tokens;
  std::vector<TokenType> types;
  std::vector<std::pair<int32_t, int32_t>> merges;  // priority order; empty: rank = id (tiktoken)
  bool ignore_merges = true;
  PreTokenizer pre = PreTokenizer::kLlama3;
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  std::string source;                 // where it came from, for messages
  std::vector<std::string> warnings;  // things the loader accepted but a user should hear about
};

struct EncodeOptions {
  bool add_bos = false;
  // Special tokens in the text are plain text unless allowed here (by literal text, e.g.
  // "<|eot_id|>").
  bool allow_all_special = false;
  std::vector<std::string> allowed_special;
};

class Tokenizer {
 public:
  static Result<Tokenizer> Create(TokenizerData data);

  // Encodes text (any bytes: invalid UTF-8 is encoded byte-exactly, see pretokenize.h).
  std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Appends the ids of text with no special-token parsing and no BOS (tiktoken's encode_ordinary).
  void EncodeOrdinary(std::string_view text, std::vector<int32_t>* out) const;
  // Encodes many documents in parallel on `pool` (nullptr: a pool of all hardware threads).
  std::vector<std::vector<int32_t>> EncodeBatch(std::span<const std::string_view> texts,
                                                const EncodeOptions& options = {},
                                                ThreadPool* pool = nullptr) const;

  // Concatenated bytes of the tokens (special tokens as their text). Error on an id out of range.
  Result<std::string> Decode(std::span<const int32_t> ids) const;
  // Bytes of one token; id must be valid.
  std::string_view TokenBytes(int32_t id) const;

  int32_t vocab_size() const;
  TokenType token_type(int32_t id) const;
  bool IsSpecial(int32_t id) const;
  std::optional<int32_t> SpecialId(std::string_view text) const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  PreTokenizer pre_tokenizer() const;
  const std::string& source() const;
  const std::vector<std::string>& warnings() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace herd
