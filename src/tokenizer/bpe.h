// Byte-level BPE over merge ranks.
//
// Symbols start as single bytes; the adjacent pair with the lowest rank is merged, leftmost first,
// until no adjacent pair has a rank. The rank of a pair comes from one of two sources, which agree
// on every tokenizer converted from tiktoken:
//  - tiktoken files: the rank of a pair is the rank (= id) of the token its bytes concatenate to;
//  - merges lists (HF tokenizer.json, GGUF tokenizer.ggml.merges): the rank is the merge's index.
// With ignore_merges (tiktoken always; HF "ignore_merges": true), a piece that is itself a token is
// emitted directly without merging.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace herd {

class Bpe {
 public:
  // tokens: id -> bytes; only ids with is_mergeable[id] take part (special tokens do not).
  // merges: pairs of ids in priority order; empty means rank = id of the concatenation (tiktoken).
  static Result<Bpe> Create(const std::vector<std::string>& tokens,
                            const std::vector<bool>& is_mergeable,
                            const std::vector<std::pair<int32_t, int32_t>>& merges,
                            bool ignore_merges);

  // Appends the ids of one pre-tokenized piece (non-empty) to *out. Bytes the vocabulary has no
  // token for are dropped (see missing_bytes()).
  void Encode(std::string_view piece, std::vector<int32_t>* out) const;
  const std::vector<uint8_t>& missing_bytes() const { return missing_bytes_; }
  // The two merge loops behind Encode, exposed so tests can check they agree: quadratic with tiny
  // constants (pieces of at most 64 bytes), and O(n log n) for long pieces.
  void EncodeShort(std::string_view piece, std::vector<int32_t>* out) const;
  void EncodeLong(std::string_view piece, std::vector<int32_t>* out) const;

  // Id of a token whose bytes are exactly `bytes`, or -1.
  int32_t Lookup(std::string_view bytes) const;
  int32_t Lookup(std::string_view bytes, uint64_t hash) const;
  size_t n_pairs() const { return pair_count_; }

 private:
  void EncodeKnownBytes(std::string_view piece, std::vector<int32_t>* out) const;
  struct PairSlot {
    uint64_t key;  // (left << 32) | right; kEmpty when unused
    uint32_t rank;
    int32_t merged;
  };

 public:  // for the lookup helpers in bpe.cc
  struct TokenSlot {
    uint64_t hash;
    uint64_t head;  // first 8 bytes, zero-padded
    int32_t id;     // -1 when unused
    uint32_t len;
    uint32_t offset;  // of the bytes in arena_, for tokens longer than 8 bytes
  };

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static constexpr uint32_t kNoRank = ~uint32_t{0};

  const PairSlot* FindPair(int32_t left, int32_t right) const {
    const uint64_t key = (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
    for (size_t i = (key * 0x9E3779B97F4A7C15ull) >> pair_shift_;; i = (i + 1) & pair_mask_) {
      const PairSlot& s = pairs_[i];
      if (s.key == key) return &s;
      if (s.key == kEmpty) return nullptr;
    }
  }
  uint32_t PairRank(int32_t left, int32_t right, int32_t* merged) const {
    const PairSlot* s = FindPair(left, right);
    if (!s) return kNoRank;
    *merged = s->merged;
    return s->rank;
  }
  void InsertPair(int32_t left, int32_t right, uint32_t rank, int32_t merged);
  void InsertToken(int32_t id);

  std::string_view TokenView(int32_t id) const {
    return {arena_.data() + token_offset_[id], token_offset_[id + 1] - token_offset_[id]};
  }
  std::string arena_;  // all token bytes, concatenated
  std::vector<uint32_t>
      token_offset_;  // [n + 1]: token id's bytes are arena_[off[id], off[id + 1])
  std::vector<PairSlot> pairs_;
  size_t pair_mask_ = 0;
  int pair_shift_ = 64;
  size_t pair_count_ = 0;
  struct BytePair {
    uint32_t rank;
    int32_t merged;
  };
  std::vector<BytePair> byte_pairs_;  // [a * 256 + b]
  std::vector<TokenSlot> lookup_;
  size_t lookup_mask_ = 0;
  int32_t byte_token_[256];             // -1: the vocabulary has no token for the byte
  std::vector<uint8_t> missing_bytes_;  // bytes without a token (dropped when encoding)
  bool ignore_merges_ = true;
  uint64_t instance_id_ = 0;  // unique per Create(): keys the per-thread piece cache
};

}  // namespace herd
