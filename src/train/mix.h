// The data mix: which shard directories to train on and with what weights, validated against the
// licence policy and one tokenizer.
//
// Mix file (JSON):
//   {"sources": [{"name": "kjv", "shards": "data/kjv", "weight": 0.7},
//                {"name": "wiki", "shards": "data/wiki", "weight": 0.3}],
//    "seed": 1}
// "shards" is a shard directory (shards.h), relative to the mix file's directory unless absolute.
// Weights are positive and need not sum to 1 (they are normalised); "seed" (default 0) keys the
// sampler. Names are unique. Unknown keys are refused (a misspelt "weight" must not pass silently).
// Licence and provenance are not in the mix: they come from the shard headers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "train/license.h"
#include "train/shards.h"

namespace herd {

struct MixSourceSpec {
  std::string name, shards;
  double weight = 0;
};

struct MixSpec {
  std::vector<MixSourceSpec> sources;
  uint64_t seed = 0;
  std::string base_dir;  // relative "shards" paths start here
};

// `where` names the file in errors.
Result<MixSpec> ParseMix(std::string_view json, const std::string& base_dir,
                         const std::string& where);
Result<MixSpec> LoadMixFile(const std::string& path);

struct MixOptions {
  LicensePolicy licenses;
  // TokenizerFingerprint of the model's tokenizer; empty: not checked.
  std::string tokenizer_fingerprint;
};

struct MixSource {
  std::string name;
  double weight = 0, probability = 0;  // probability: weight / sum of weights
  std::string dir;
  std::vector<Shard> shards;
  uint64_t documents = 0, tokens = 0;
};

class DataMix {
 public:
  // Opens every source's shards and validates: each source has shards; all shards share one
  // tokenizer fingerprint (and the caller's, when given); every shard's licence passes the policy.
  // Errors name the source and the shard file.
  static Result<DataMix> Open(const MixSpec& spec, const MixOptions& options = {});
  static Result<DataMix> OpenFile(const std::string& mix_path, const MixOptions& options = {});

  const std::vector<MixSource>& sources() const { return sources_; }
  uint64_t seed() const { return seed_; }
  const std::string& tokenizer_fingerprint() const { return fingerprint_; }
  int64_t vocab_size() const { return vocab_size_; }

 private:
  std::vector<MixSource> sources_;
  uint64_t seed_ = 0;
  std::string fingerprint_;
  int64_t vocab_size_ = 0;
};

}  // namespace herd
