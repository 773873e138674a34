// The data card: what a training run was fed, for the model card and for audits.
//
//   {"format": "herd-data-card", "version": 1,
//    "tokenizer": {"fingerprint": ..., "sha256": [tokenizer file hashes seen in the shards],
//                  "vocab_size": 128256},
//    "seed": 1, "sampler": {"seq_len": 2048, "pack": false, "samples": 1000},  (when given)
//    "sources": [{"name": "kjv", "shards": "data/kjv", "weight": 0.7, "probability": 0.7,
//                 "license": "CC-PDDC", "provenance": "...",   (an array if shards disagree)
//                 "n_shards": 1, "documents": 66, "tokens": 1000000,
//                 "inputs": [{"path": ..., "sha256": ..., "bytes": ..., "documents": ...}],
//                 "windows": 480, "samples_seen": 700, "epochs": 1.46, "tokens_seen": 5600}],
//    "tokens_seen": 2048000}
// tokens_seen counts targets served to all ranks (seq_len per sample; 0 without a sampler);
// epochs = samples_seen / windows.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "train/mix.h"
#include "train/sampler.h"

namespace herd {

// Pretty-printed JSON. `sampler` may be null (a card of the mix alone).
std::string BuildDataCard(const DataMix& mix, const MixSampler* sampler);

// One line for people loading a trained model: tokens seen, and per source its licence, mix
// share and epochs, e.g. "2.05M tokens seen: kjv (CC-PDDC, 70%, 1.46 epochs), wiki (CC-BY-SA-4.0,
// 30%, 0.20 epochs)". Error if the text is not a herd data card.
Result<std::string> SummarizeDataCard(std::string_view card_json);

}  // namespace herd
