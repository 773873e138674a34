#include "tokenizer/bpe.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <queue>

#include "base/check.h"

namespace herd {

namespace {

constexpr size_t kShortMax = 64;  // longer pieces use the O(n log n) loop

// 64-bit hash of a short byte string: 8 bytes at a time, multiply-xorshift mixing.
inline uint64_t HashBytes(std::string_view s) {
  uint64_t h = 0x243F6A8885A308D3ull ^ (s.size() * 0x9E3779B97F4A7C15ull);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  if (i < s.size()) {
    uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    h = (h ^ w) * 0x94D049BB133111EBull;
    h ^= h >> 29;
  }
  return h;
}

size_t TableSize(size_t n) { return std::bit_ceil(std::max<size_t>(16, n * 2)); }

}  // namespace

namespace {

// The first (up to) 8 bytes of s, zero-padded: with the length, the whole key of a short token, so
// most lookups compare in the slot without touching the token's bytes elsewhere in memory.
inline uint64_t Head8(std::string_view s) {
  uint64_t w = 0;
  std::memcpy(&w, s.data(), std::min<size_t>(8, s.size()));
  return w;
}

inline bool SlotMatches(const Bpe::TokenSlot& s, uint64_t h, std::string_view bytes,
                        const char* arena) {
  if (s.hash != h || s.len != bytes.size() || s.head != Head8(bytes)) return false;
  return bytes.size() <= 8 || std::memcmp(arena + s.offset, bytes.data(), bytes.size()) == 0;
}

}  // namespace

void Bpe::InsertToken(int32_t id) {
  const std::string_view bytes = TokenView(id);
  const uint64_t h = HashBytes(bytes);
  for (size_t i = h & lookup_mask_;; i = (i + 1) & lookup_mask_) {
    TokenSlot& s = lookup_[i];
    if (s.id < 0) {
      s = {h, Head8(bytes), id, static_cast<uint32_t>(bytes.size()), token_offset_[id]};
      return;
    }
    if (SlotMatches(s, h, bytes, arena_.data())) return;  // duplicate bytes: first id wins
  }
}

int32_t Bpe::Lookup(std::string_view bytes) const { return Lookup(bytes, HashBytes(bytes)); }

int32_t Bpe::Lookup(std::string_view bytes, uint64_t h) const {
  for (size_t i = h & lookup_mask_;; i = (i + 1) & lookup_mask_) {
    const TokenSlot& s = lookup_[i];
    if (s.id < 0) return -1;
    if (SlotMatches(s, h, bytes, arena_.data())) return s.id;
  }
}

void Bpe::InsertPair(int32_t left, int32_t right, uint32_t rank, int32_t merged) {
  const uint64_t key = (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  for (size_t i = (key * 0x9E3779B97F4A7C15ull) >> pair_shift_;; i = (i + 1) & pair_mask_) {
    PairSlot& s = pairs_[i];
    if (s.key == key) return;  // repeated merge: the first (lowest rank) stays
    if (s.key == kEmpty) {
      s = {key, rank, merged};
      ++pair_count_;
      return;
    }
  }
}

Result<Bpe> Bpe::Create(const std::vector<std::string>& tokens,
                        const std::vector<bool>& is_mergeable,
                        const std::vector<std::pair<int32_t, int32_t>>& merges,
                        bool ignore_merges) {
  static std::atomic<uint64_t> next_instance{1};
  Bpe bpe;
  bpe.instance_id_ = next_instance.fetch_add(1);
  bpe.ignore_merges_ = ignore_merges;
  const size_t n = tokens.size();
  size_t total = 0;
  for (const auto& t : tokens) total += t.size();
  if (total > UINT32_MAX)
    return Status::Errorf("vocabulary holds {} bytes of tokens (limit 4 GiB)", total);
  bpe.arena_.reserve(total);
  for (const auto& t : tokens) bpe.arena_ += t;
  bpe.token_offset_.resize(n + 1);
  for (size_t id = 0, off = 0; id < n; off += tokens[id].size(), ++id)
    bpe.token_offset_[id] = static_cast<uint32_t>(off);
  bpe.token_offset_[n] = static_cast<uint32_t>(total);

  bpe.lookup_.assign(TableSize(n), TokenSlot{0, 0, -1, 0, 0});
  bpe.lookup_mask_ = bpe.lookup_.size() - 1;
  for (size_t id = 0; id < n; ++id)
    if (is_mergeable[id] && !tokens[id].empty()) bpe.InsertToken(static_cast<int32_t>(id));
  // Some vocabularies (SmolLM2's: 21 control and never-valid UTF-8 bytes) lack a few byte tokens.
  // Such bytes cannot be encoded; herd drops them and never merges across them, as llama.cpp's BPE
  // does (HF tokenizers also drops them but merges their neighbours: "(\x04)" -> "()" there).
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    bpe.byte_token_[b] = bpe.Lookup(std::string_view(&c, 1));
    if (bpe.byte_token_[b] < 0) bpe.missing_bytes_.push_back(static_cast<uint8_t>(b));
  }

  // Pairs. From a merges list: rank = index. From ranks (tiktoken): every split of a token into two
  // tokens is a pair whose rank is the token's id; BPE only ever holds tokens, so this covers every
  // concatenation the tiktoken algorithm could look up.
  size_t expected = merges.size();
  if (merges.empty())
    for (size_t id = 0; id < n; ++id) expected += tokens[id].size() > 1 ? tokens[id].size() - 1 : 0;
  const size_t cap = TableSize(expected);
  bpe.pairs_.assign(cap, PairSlot{kEmpty, 0, 0});
  bpe.pair_mask_ = cap - 1;
  bpe.pair_shift_ = 64 - std::countr_zero(cap);
  if (!merges.empty()) {
    for (size_t r = 0; r < merges.size(); ++r) {
      auto [a, b] = merges[r];
      if (a < 0 || b < 0 || size_t(a) >= n || size_t(b) >= n)
        return Status::Errorf("merge {} refers to token id out of range", r);
      std::string joined = std::string(bpe.TokenView(a)) + std::string(bpe.TokenView(b));
      const int32_t merged = bpe.Lookup(joined);
      if (merged < 0)
        return Status::Errorf("merge {} ('{}' + '{}') makes a token that is not in the vocabulary",
                              r, bpe.TokenView(a), bpe.TokenView(b));
      bpe.InsertPair(a, b, static_cast<uint32_t>(r), merged);
    }
  } else {
    for (size_t id = 0; id < n; ++id) {
      if (!is_mergeable[id]) continue;
      std::string_view t = bpe.TokenView(id);
      for (size_t k = 1; k < t.size(); ++k) {
        const int32_t a = bpe.Lookup(t.substr(0, k));
        if (a < 0) continue;
        const int32_t b = bpe.Lookup(t.substr(k));
        if (b < 0) continue;
        bpe.InsertPair(a, b, static_cast<uint32_t>(id), static_cast<int32_t>(id));
      }
    }
  }
  // Dense table of the pairs of two single bytes: the first merge round of every piece reads it
  // instead of the (much larger, cache-missing) hash table.
  bpe.byte_pairs_.resize(256 * 256);
  for (int a = 0; a < 256; ++a)
    for (int b = 0; b < 256; ++b) {
      BytePair& bp = bpe.byte_pairs_[(a << 8) | b];
      bp.merged = -1;
      bp.rank = bpe.PairRank(bpe.byte_token_[a], bpe.byte_token_[b], &bp.merged);
    }
  return bpe;
}

namespace {

// Per-thread memo of recently merged pieces (words repeat; merging is the expensive part). Bounded:
// it is emptied when full. Keyed by the Bpe it serves, so several tokenizers in one thread do not
// mix.
class PieceCache {
 public:
  // Starts small (cheap for short inputs) and doubles up to kMaxSlots (half of them used: 512k
  // pieces, ~30 MB); when that is full it starts over.
  static constexpr size_t kMinSlots = 1 << 12;
  static constexpr size_t kMaxSlots = 1 << 20;
  static constexpr size_t kMaxPiece = 64;

  const int32_t* Find(uint64_t owner, std::string_view piece, uint64_t h, size_t* n) {
    if (owner != owner_) Reset(owner, kMinSlots);
    const size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.key_len == 0) return nullptr;
      if (s.hash == h && std::string_view(keys_.data() + s.key_off, s.key_len) == piece) {
        *n = s.val_len;
        return vals_.data() + s.val_off;
      }
    }
  }
  void Insert(std::string_view piece, uint64_t h, const int32_t* ids, size_t n) {
    if (count_ >= slots_.size() / 2) {
      if (slots_.size() < kMaxSlots) {
        Grow();
      } else {
        Reset(owner_, kMinSlots);
      }
    }
    Place({h, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(piece.size()),
           static_cast<uint32_t>(vals_.size()), static_cast<uint32_t>(n)});
    keys_.append(piece);
    vals_.insert(vals_.end(), ids, ids + n);
    ++count_;
  }

 private:
  struct Slot {
    uint64_t hash;
    uint32_t key_off, key_len, val_off, val_len;  // key_len 0: empty (pieces are never empty)
  };
  void Place(const Slot& slot) {
    const size_t mask = slots_.size() - 1;
    size_t i = slot.hash & mask;
    while (slots_[i].key_len != 0) i = (i + 1) & mask;
    slots_[i] = slot;
  }
  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.size() * 2, Slot{0, 0, 0, 0, 0});
    for (const Slot& s : old)
      if (s.key_len != 0) Place(s);
  }
  void Reset(uint64_t owner, size_t n_slots) {
    owner_ = owner;
    slots_.assign(n_slots, Slot{0, 0, 0, 0, 0});
    keys_.clear();
    vals_.clear();
    count_ = 0;
  }
  uint64_t owner_ = 0;
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> vals_;
  size_t count_ = 0;
};

}  // namespace

void Bpe::Encode(std::string_view piece, std::vector<int32_t>* out) const {
  if (!missing_bytes_.empty()) {
    // Split at bytes with no token and drop them (see Create).
    size_t start = 0;
    bool split = false;
    for (size_t i = 0; i < piece.size(); ++i) {
      if (byte_token_[static_cast<uint8_t>(piece[i])] >= 0) continue;
      split = true;
      if (i > start) EncodeKnownBytes(piece.substr(start, i - start), out);
      start = i + 1;
    }
    if (split) {
      if (start < piece.size()) EncodeKnownBytes(piece.substr(start), out);
      return;
    }
  }
  EncodeKnownBytes(piece, out);
}

void Bpe::EncodeKnownBytes(std::string_view piece, std::vector<int32_t>* out) const {
  if (piece.size() == 1) {
    out->push_back(byte_token_[static_cast<uint8_t>(piece[0])]);
    return;
  }
  const uint64_t h = HashBytes(piece);
  if (ignore_merges_) {
    const int32_t id = Lookup(piece, h);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  if (piece.size() > PieceCache::kMaxPiece) {
    EncodeLong(piece, out);
    return;
  }
  thread_local PieceCache cache;
  size_t n = 0;
  if (const int32_t* ids = cache.Find(instance_id_, piece, h, &n)) {
    out->insert(out->end(), ids, ids + n);
    return;
  }
  const size_t before = out->size();
  if (piece.size() <= kShortMax) {
    EncodeShort(piece, out);
  } else {
    EncodeLong(piece, out);
  }
  cache.Insert(piece, h, out->data() + before, out->size() - before);
}

// O(n^2) in the piece length with tiny constants: symbol ids and the rank of each symbol's pair
// with its right neighbour live in two small arrays; a merge removes one entry.
void Bpe::EncodeShort(std::string_view piece, std::vector<int32_t>* out) const {
  const size_t n = piece.size();
  CHECK(n >= 1 && n <= kShortMax);
  int32_t ids[kShortMax], merged_id[kShortMax];
  uint32_t ranks[kShortMax];
  for (size_t i = 0; i < n; ++i) ids[i] = byte_token_[static_cast<uint8_t>(piece[i])];
  for (size_t i = 0; i + 1 < n; ++i) {
    const BytePair& bp = byte_pairs_[(uint8_t(piece[i]) << 8) | uint8_t(piece[i + 1])];
    ranks[i] = bp.rank;
    merged_id[i] = bp.merged;
  }
  size_t m = n;
  ranks[m - 1] = kNoRank;
  while (m > 1) {
    size_t best = 0;
    uint32_t best_rank = ranks[0];
    for (size_t i = 1; i + 1 < m; ++i)
      if (ranks[i] < best_rank) best_rank = ranks[i], best = i;
    if (best_rank == kNoRank) break;
    ids[best] = merged_id[best];
    std::memmove(ids + best + 1, ids + best + 2, (m - best - 2) * sizeof(int32_t));
    std::memmove(ranks + best + 1, ranks + best + 2, (m - best - 2) * sizeof(uint32_t));
    std::memmove(merged_id + best + 1, merged_id + best + 2, (m - best - 2) * sizeof(int32_t));
    --m;
    ranks[m - 1] = kNoRank;
    if (best + 1 < m)
      ranks[best] = PairRank(ids[best], ids[best + 1], &merged_id[best]);
    else
      ranks[best] = kNoRank;
    if (best > 0) ranks[best - 1] = PairRank(ids[best - 1], ids[best], &merged_id[best - 1]);
  }
  out->insert(out->end(), ids, ids + m);
}

// O(n log n): a doubly linked list of symbols and a min-heap of candidate pairs keyed by (rank,
// left symbol position). Stale heap entries (a side already merged away) are skipped when popped.
// Ties go to the leftmost pair, as in the quadratic loop, because positions order the same way
// symbols do.
void Bpe::EncodeLong(std::string_view piece, std::vector<int32_t>* out) const {
  const size_t n = piece.size();
  std::vector<int32_t> ids(n);
  std::vector<int32_t> prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    ids[i] = byte_token_[static_cast<uint8_t>(piece[i])];
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  struct Cand {
    uint32_t rank;
    int32_t pos;
    int32_t left_id, right_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0 || next[pos] < 0) return;
    int32_t merged;
    const uint32_t r = PairRank(ids[pos], ids[next[pos]], &merged);
    if (r != kNoRank) heap.push({r, pos, ids[pos], ids[next[pos]]});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    const int32_t r = next[c.pos];
    if (ids[c.pos] != c.left_id || r < 0 || ids[r] != c.right_id) continue;  // stale
    int32_t merged;
    PairRank(c.left_id, c.right_id, &merged);
    ids[c.pos] = merged;
    ids[r] = -1;  // dead
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out->push_back(ids[i]);
}

}  // namespace herd
