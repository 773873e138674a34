// One training run: a model (random from a preset, loaded from a model, or from a checkpoint),
// the data mix and its sampler, gradients, the optimizer and the schedule. Step() is one optimizer
// update: batch_tokens / seq_len windows drawn in micro-batches of micro_batch_tokens / seq_len,
// each run through ForwardBackward with the gradient scaled by 1 / (targets of the whole step), so
// the accumulated gradient is that of the step's mean loss (each micro-batch split into `lanes`
// parts run concurrently, each over its share of the threads and into its own gradient buffer,
// the buffers summed in lane order: two single-threaded lanes beat two threads on every product of
// a small model, which hand off work hundreds of times a step); then global-norm clipping and AdamW
// at the schedule's learning rate. With pack, each window goes in with the sampler's document
// starts (TokenBatch::doc_starts), so attention stays within each document, in validation too.
//
// Data parallel (train/dist.h): under `mpirun -np N` every rank holds the whole model and draws
// its share of each step's windows (sampler rank / world_size: batch_tokens / N per rank, in
// micro-batches of micro_batch_tokens, which is then per rank); the gradient sums and the loss sums
// are all-reduced, so every rank applies the same update to the same weights and the loss is the
// global mean. The step sees the same windows as one process with the same batch_tokens; only the
// order of float32 sums differs. VerifyReplicas() checks that the ranks' weights are identical.
//
// Exact resume: a checkpoint (train/checkpoint.h) holds the float32 weights, the AdamW moments,
// the step and the sampler's cursors; the sampler is counter-based and the forward and backward are
// deterministic, so a resumed run produces bit-identical losses to one that never stopped.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/load.h"
#include "tokenizer/tokenizer.h"
#include "train/grads.h"
#include "train/mix.h"
#include "train/optimizer.h"
#include "train/sampler.h"

namespace herd {

struct TrainOptions {
  std::string mix;                 // mix file (mix.h)
  std::string preset;              // a PresetConfig name: random init with `seed`...
  std::string init_from;           // ...or a model to start from (any format herd loads)...
  std::string resume;              // ...or a checkpoint directory to continue
  std::string tokenizer;           // with a preset: the tokenizer file (empty: Llama 3's default)
  std::string val_mix;             // optional validation mix
  int64_t steps = 0;               // total optimizer updates (a resumed run continues to this)
  int seq_len = 0;                 // tokens per window (targets per window)
  int64_t batch_tokens = 0;        // targets per optimizer update: a multiple of seq_len
  int64_t micro_batch_tokens = 0;  // per forward/backward and rank (0: batch_tokens / ranks);
                                   // divides batch_tokens / ranks
  // Lanes: each micro-batch's windows are split into `lanes` equal parts whose gradients are
  // computed separately (concurrently, the threads shared between them) and then summed in lane
  // order. The result depends on lanes, never on the thread count. Each lane past the first
  // holds a float32 gradient of the whole model. 0: 2 when the micro-batch has an even number of
  // windows and the model at most 2^28 parameters (a second gradient of at most 1 GiB), else 1.
  int lanes = 0;
  LrSchedule schedule;  // total_steps is set from `steps`
  double clip = 1.0;    // global gradient norm limit (<= 0: no clipping)
  AdamWOptions adamw;
  uint64_t seed = 0;  // weight initialisation with a preset
  // With a preset: shape overrides (0: the preset's). With an explicit `tokenizer`, the vocabulary
  // (and bos / eos ids) come from it, so a small trained tokenizer gives a small embedding.
  int dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, ffn_dim = 0;
  bool pack = false;    // sampler packing (sampler.h), attention masked at document joins
  int val_batches = 4;  // micro-batches of validation windows (per rank, the ranks' shares)
  std::vector<std::string> allow_licenses;
};

struct StepResult {
  int64_t step = 0;              // updates done, this one included
  double loss = 0;               // mean cross-entropy of the step's targets, before the update
  double lr = 0, grad_norm = 0;  // grad_norm before clipping
  uint64_t tokens_seen = 0;      // targets trained on so far, this step included
};

class Trainer {
 public:
  // Loads or initialises everything; errors name what is wrong (options, files, mix, shapes).
  static Result<std::unique_ptr<Trainer>> Create(const TrainOptions& options, ThreadPool* pool);

  Result<StepResult> Step();
  // Mean loss over the first val_batches micro-batches of the validation mix (the same windows
  // every time). Error when there is no validation mix.
  Result<double> ValidationLoss();
  // Writes a checkpoint of the current state to dir (checkpoint.h), with the data card. With
  // several ranks only one (rank 0) should call it: the state is the same on every rank.
  Status Save(const std::string& dir) const;
  // A 64-bit hash of the float32 weights (bit patterns, ParamRefs order).
  uint64_t WeightsChecksum() const;
  // Collective: rank 0's checksum broadcast and compared by every rank; an error on every rank
  // when any rank's weights differ. Returns the checksum.
  Result<uint64_t> VerifyReplicas() const;

  int64_t step() const { return step_; }
  const TrainOptions& options() const { return options_; }
  const Model& model() const { return model_; }
  const DataMix& mix() const { return *mix_; }
  bool has_validation() const { return val_mix_ != nullptr; }
  int world_size() const { return world_size_; }
  int64_t parameters() const;

 private:
  Trainer() = default;
  std::string HParams() const;

  TrainOptions options_;
  ThreadPool* pool_ = nullptr;
  Model model_;
  std::optional<TokenizerData> tokenizer_;
  std::unique_ptr<DataMix> mix_, val_mix_;
  std::unique_ptr<MixSampler> sampler_;
  LlamaGrads grads_;                                     // lane 0's, then the step's sum
  std::vector<LlamaGrads> lane_grads_;                   // lanes 1, 2, ...
  std::vector<std::vector<ParamRef>> lane_params_;       // their ParamRefs
  std::vector<std::unique_ptr<ThreadPool>> lane_pools_;  // each lane's threads (null: inline)
  std::vector<ParamRef> params_;
  AdamW optimizer_;
  int64_t step_ = 0;
  int rank_ = 0, world_size_ = 1;
  uint64_t tokens_seen_ = 0;
  std::vector<int> inputs_, targets_;
};

}  // namespace herd
