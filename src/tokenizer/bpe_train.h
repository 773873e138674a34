// Training a byte-level BPE vocabulary for Llama 3's tokenizer layout (the work behind
// `herd tokenizer train`).
//
// 1. Texts are split with Llama 3's pre-tokenizer (SplitLlama3, the same scanner Encode uses) and
//    the distinct pieces ("words") are counted (BpeWordCounter, parallel over a ThreadPool).
// 2. Ranks 0..255 are the single bytes in byte order. Then, repeatedly, the most frequent adjacent
//    pair of symbols over all words (weighted by word frequency) is merged, and the concatenated
//    bytes get the next rank, until vocab_size - 256 mergeable ranks exist (the 256 Llama 3 special
//    tokens follow them), no pair is left, or the best pair occurs fewer than min_frequency times.
//    Ties between pairs of equal count go to the pair whose left token's bytes are
//    lexicographically smallest (bytes compared as unsigned), then whose right token's bytes are.
//    Pair counts are updated incrementally: a merge only revisits the words that contain the pair
//    (a per-pair word index), and a max-heap with lazy invalidation picks the next pair.
//    If a pair concatenates to bytes that are already a token (e.g. "a"+"bc" after "ab"+"c"), the
//    merge is applied to the words but adds no rank.
// 3. The ranks are written in tiktoken's format (TiktokenFile), which ParseTiktoken (and
//    tiktoken.Encoding with Meta's pattern) load; specials land at ids n_ranks..n_ranks+255.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace herd {

class ThreadPool;

// Llama 3's special tokens (Llama3SpecialTokens(), load.h) that follow the mergeable ranks.
inline constexpr int32_t kBpeTrainSpecialTokens = 256;

// Counts Llama 3 pre-tokenizer pieces over many texts.
class BpeWordCounter {
 public:
  // Splits each text (any bytes) and adds its pieces. Long texts are cut into chunks at points that
  // are always piece boundaries ('\n' followed by an ASCII letter), so one big file also runs in
  // parallel. pool: nullptr runs on the calling thread.
  void Add(std::span<const std::string_view> texts, ThreadPool* pool = nullptr);
  void Add(std::string_view text) { Add(std::span<const std::string_view>(&text, 1), nullptr); }

  // Distinct words sorted by their bytes, with their counts.
  std::vector<std::pair<std::string, uint64_t>> Words() const;
  uint64_t total_words() const { return total_words_; }
  uint64_t total_bytes() const { return total_bytes_; }

 private:
  std::unordered_map<std::string, uint64_t> counts_;
  uint64_t total_words_ = 0, total_bytes_ = 0;
};

struct BpeTrainProgress {
  int32_t ranks = 0;         // mergeable ranks so far
  int32_t target_ranks = 0;  // vocab_size - 256
  uint64_t best_count = 0;   // count of the pair just merged
};

struct BpeTrainOptions {
  int32_t vocab_size = 0;      // mergeable ranks + 256 specials; >= 512
  uint64_t min_frequency = 2;  // stop when the best pair occurs fewer times than this
  // Called every progress_every merges and at the end (optional).
  std::function<void(const BpeTrainProgress&)> progress;
  int32_t progress_every = 1000;
};

struct BpeTrainResult {
  std::vector<std::string> ranks;  // rank -> token bytes; ranks[b] = the byte b for b < 256
  int64_t merges = 0;              // merges applied (>= ranks.size() - 256)
  uint64_t last_count = 0;         // count of the last pair merged
  // Why training stopped before vocab_size: "" (reached it), "no pairs left", "min frequency".
  std::string stopped_early;
};

// Trains on counted words (as BpeWordCounter::Words() returns them). Deterministic: the result
// depends only on the words and counts, not on their order or thread counts.
Result<BpeTrainResult> TrainBpe(const std::vector<std::pair<std::string, uint64_t>>& words,
                                const BpeTrainOptions& options);

// tiktoken BPE file text: "<base64 bytes> <rank>\n" per rank, in rank order.
std::string TiktokenFile(const std::vector<std::string>& ranks);

}  // namespace herd
