// Deterministic training windows from a DataMix.
//
// The global stream. Sample i (i = 0, 1, 2, ...) of the stream is one window of seq_len + 1 tokens
// (inputs = tokens[0, seq_len), next-token targets = tokens[1, seq_len + 1)):
//   1. its source is drawn by weight from a counter-based hash of (seed, i): stateless, so sample
//      i's source never depends on how the stream was split or resumed;
//   2. the source's cursor (epoch, position) picks the window permutation_{seed, source, epoch}
//      (position), then advances; after the last window the epoch increments and a new permutation
//      starts. A permutation is a keyed 4-round Feistel network over [0, n_windows) with cycle
//      walking (a bijection), so it costs no memory and every window is served once per epoch.
// Windows of a source (stride seq_len, so consecutive windows share one token and every token is a
// target once):
//   - pack off: cut inside each document ([bos] text eos): a document of L tokens gives
//     floor((L - 1) / seq_len) windows; its remainder and documents shorter than seq_len + 1 are
//     not used. A window never crosses a document boundary.
//   - pack on: cut from the source's whole token stream (shards in order), across documents. Each
//     sample reports doc_starts: the positions p in [1, seq_len] where a new document begins
//     (tokens[p - 1] is the previous document's eos). Training (TokenBatch::doc_starts,
//     train/backward.h) cuts the inputs at every p < seq_len into independent sequences, so no
//     token attends across a join. The targets stay the window's next tokens: the target at
//     p - 1 (the eos) is the next document's first token.
// Ranks: Next() advances the global stream by batch * world_size samples and returns rank r's
// share: samples r, r + world_size, r + 2 * world_size, ... of that step. So world_size ranks
// with batch B see together exactly what one process with batch B * world_size sees, row for row.
// Every rank replays the whole global stream (cheap integer work), copying only its own windows.
// Counts: "tokens served" counts targets, seq_len per sample.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "train/mix.h"

namespace herd {

struct SamplerOptions {
  int seq_len = 0;  // window: seq_len + 1 tokens
  int batch = 1;    // samples per rank per Next()
  int rank = 0, world_size = 1;
  bool pack = false;
};

struct Batch {
  int batch = 0, seq_len = 0;
  std::vector<int32_t> tokens;               // [batch, seq_len + 1], row-major
  std::vector<int> source;                   // [batch] index into DataMix::sources()
  std::vector<uint64_t> sample;              // [batch] position in the global stream
  std::vector<std::vector<int>> doc_starts;  // [batch] pack only: positions in [1, seq_len]
  std::span<const int32_t> row(int b) const {
    return {tokens.data() + size_t(b) * (seq_len + 1), size_t(seq_len) + 1};
  }
};

struct SourceCursor {
  uint64_t epoch = 0, position = 0;  // position in this epoch's permutation
  uint64_t samples = 0;              // drawn from this source, all ranks
  uint64_t tokens = 0;               // targets served, all ranks
  uint64_t rank_tokens = 0;          // targets served to this rank
};

class MixSampler {
 public:
  // `mix` must outlive the sampler. Errors when a source has no window of seq_len + 1 tokens.
  static Result<MixSampler> Create(const DataMix& mix, const SamplerOptions& options);

  Batch Next();

  // Exact resume: a JSON object with the stream position and every source's cursor and counts.
  // Restoring needs the same mix data (window counts), seed, seq_len and pack; batch, rank and
  // world_size may differ (the global stream continues from the same sample).
  std::string SaveState() const;
  Status RestoreState(std::string_view json);

  const std::vector<SourceCursor>& cursors() const { return cursors_; }
  uint64_t windows(int source) const { return sources_[source].n_windows; }
  uint64_t next_sample() const { return next_sample_; }
  const SamplerOptions& options() const { return options_; }

 private:
  struct DocRef {
    uint32_t shard;
    uint64_t start;  // token offset in the shard
  };
  struct SourceIndex {
    uint64_t n_windows = 0;
    uint64_t key = 0;                   // permutation key (without the epoch)
    std::vector<uint64_t> cum_windows;  // pack off: windows before docs[i]; size docs + 1
    std::vector<DocRef> docs;           // pack off: documents with at least one window
    std::vector<uint64_t> shard_start;  // pack on: first stream token of each shard; size + 1
  };

  int SelectSource(uint64_t sample) const;
  void CopyWindow(int source, uint64_t window, int32_t* out, std::vector<int>* doc_starts) const;

  const DataMix* mix_ = nullptr;
  SamplerOptions options_;
  std::vector<double> cum_probability_;
  std::vector<SourceIndex> sources_;
  std::vector<SourceCursor> cursors_;
  uint64_t next_sample_ = 0;
};

}  // namespace herd
