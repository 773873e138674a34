// The sampler chain: turns one row of logits into the next token id.
//
// Chain order (each step sees the output of the previous one):
//   1. logit_bias      logits[id] += bias (-inf bans a token, +inf forces it)
//   2. penalties       repeat: over the distinct ids among the last repeat_last_n history ids,
//                        l = l > 0 ? l / repeat_penalty : l * repeat_penalty   (llama.cpp)
//                      presence/frequency: over the whole history, with c = count of id,
//                        l -= presence_penalty * (c > 0) + frequency_penalty * c   (OpenAI)
//   3. NaN -> -inf     a NaN logit is never picked
//   4. temperature == 0: argmax (ties -> lowest id); no random number is drawn. Otherwise:
//   5. top_k           keep the k largest logits (ties broken by lower id)
//   6. softmax(l / T)
//   7. top_p           keep the smallest prefix, by prob desc (ties: lower id first), whose
//                      cumulative prob is >= top_p; always at least one token
//   8. min_p           keep tokens with p >= min_p * p_max
//   9. renormalise, draw one uniform double in [0, 1) and walk the cumulative distribution.
//      Exactly one draw per call, even when one token is left, so the stream position depends only
//      on the number of sampled (non-greedy) calls, not on the logits.
//
// Degenerate rows: if every logit is -inf or NaN after steps 1-3, Sample returns the lowest id (0)
// without drawing and degenerate() reports it, so the generation loop can end or report the error
// (such a row means a broken model or a request that banned every token). If some logits are +inf,
// the distribution is uniform over those tokens (the limit of softmax as they grow).
//
// Determinism: the random stream is std::mt19937_64 (fully specified by the standard) turned into
// doubles by hand, and candidate order is a total order (logit desc, id asc) or id order, so the
// same params + seed + logits + history give the same picks everywhere, up to std::exp, whose last
// bit may differ between C libraries.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "base/status.h"

namespace herd {

struct SamplerParams {
  float temperature = 0.8f;     // 0 = greedy (argmax; ties -> lowest id)
  int top_k = 40;               // <= 0: off
  float top_p = 0.95f;          // 1: off
  float min_p = 0.05f;          // 0: off (keep tokens with p >= min_p * p_max)
  float repeat_penalty = 1.0f;  // 1: off
  int repeat_last_n = 64;       // 0: off; -1: the whole history
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::vector<std::pair<int, float>> logit_bias;  // (id, added to the logit of id)
  uint64_t seed = 0;
};

// Rejects what the chain cannot give a meaning to: temperature < 0 or not finite, top_p outside
// (0, 1], min_p outside [0, 1], repeat_penalty <= 0 or not finite, repeat_last_n < -1, penalties
// not finite, bias ids outside [0, vocab_size), NaN biases (+-inf biases are fine). The range
// policies of an API (OpenAI's penalties in [-2, 2]) belong to the server's request validation.
Status ValidateSamplerParams(const SamplerParams& p, int vocab_size);

struct TokenProb {
  int id;
  float prob;
};

class Sampler {
 public:
  // params must pass ValidateSamplerParams (CHECKed: validate user input before building one).
  Sampler(SamplerParams params, int vocab_size);

  // Picks the next token from raw logits (size vocab_size, CHECKed; steps 1-3 modify them in
  // place), given the ids seen so far: prompt + generated, for the penalties (ids outside the
  // vocabulary are ignored). Costs O(V + history) plus O(V log k) for top_k, or a sort of only
  // the nucleus for top_p alone.
  int Sample(std::span<float> logits, std::span<const int> history);

  // True if the last Sample call found no finite or +inf logit and fell back to id 0.
  bool degenerate() const { return degenerate_; }

  // The distribution the last Sample call drew from: (id, prob) after the whole chain, sorted by
  // prob desc (ties: lower id first), probs summing to 1. Greedy gives {(pick, 1)}; a degenerate
  // row gives {}. Built on demand, so Sample pays nothing when no one asks (logprobs).
  std::vector<TokenProb> LastProbs() const;

  void Reseed(uint64_t seed) { rng_.seed(seed); }
  const SamplerParams& params() const { return params_; }

 private:
  struct Candidate {
    int id;
    float logit;   // after steps 1-3 (and top_k)
    float weight;  // exp((logit - max) / T), unnormalised; the max has weight 1
  };
  // A total order, so which tokens survive a cut and the order they are drawn in never depend on
  // the standard library's sort algorithm.
  static bool ByLogit(const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }

  void ApplyPenalties(std::span<float> logits, std::span<const int> history);
  int Greedy(std::span<const float> logits);
  // Steps 5-8 on cands_ (finite logits); leaves the survivors in cands_, their sum in kept_sum_.
  void Truncate();
  // top_p helper: sorts a prefix of cands_ that holds the nucleus of mass target; returns its size.
  size_t SortNucleus(float max_logit, double target);
  double NextUniform();  // [0, 1) with 53 random bits

  SamplerParams params_;
  int vocab_size_;
  std::mt19937_64 rng_;
  std::vector<Candidate> cands_;  // scratch reused across calls; after Sample, what was drawn from
  double kept_sum_ = 0;
  bool greedy_last_ = false;
  int last_pick_ = 0;
  bool degenerate_ = false;
  std::vector<double> bucket_mass_;  // SortNucleus scratch
  std::vector<int> counts_;          // per id, zero between calls (only touched ids are reset)
};

}  // namespace herd
