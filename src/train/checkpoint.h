// Training checkpoints: a directory that is at once a Hugging Face model (herd run and transformers
// load it) and everything needed to continue the run exactly where it stopped.
//
//   config.json, generation_config.json   SaveModel's HF layout (model/save.h)
//   model.safetensors                     the float32 master weights (HF names and RoPE order)
//   tokenizer.json, tokenizer_config.json when the run has a tokenizer
//   optimizer.safetensors                 AdamW moments, float32: "m.<Meta name>", "v.<Meta name>"
//   train_state.json                      {"format": "herd-train-state", "version": 1,
//                                          "step": updates done, "optimizer_steps": ...,
//                                          "tokens_seen": ..., "sampler": MixSampler::SaveState,
//                                          "hparams": {...}}   (the run's settings, free form)
//   data_card.json                        BuildDataCard of the mix and the sampler's position
// The files are written to DIR.tmp, which is renamed to DIR at the end: a run killed while saving
// leaves the previous checkpoint intact and no half-written one.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/load.h"
#include "tokenizer/tokenizer.h"
#include "train/optimizer.h"

namespace herd {

struct TrainState {
  int64_t step = 0;  // optimizer updates done
  uint64_t tokens_seen = 0;
  std::string sampler;  // MixSampler::SaveState()
  std::string hparams;  // a JSON object
};

Status SaveCheckpoint(const std::string& dir, const Model& model, const TokenizerData* tokenizer,
                      const AdamW& optimizer, const TrainState& state,
                      const std::string& data_card);

// A checkpoint read back: the model as float32 training weights, the optimizer (with its moments,
// for ParamRefs order of those weights) and the state.
struct Checkpoint {
  Model model;
  AdamW optimizer;
  TrainState state;
};
// `options` are the AdamW hyper-parameters to continue with.
Result<Checkpoint> LoadCheckpoint(const std::string& dir, const AdamWOptions& options,
                                  ThreadPool* pool);

// Whether dir holds a train_state.json.
bool IsCheckpoint(const std::string& dir);

}  // namespace herd
