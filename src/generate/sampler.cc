#include "generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/check.h"

namespace herd {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

bool Finite(float x) { return std::isfinite(x); }

// top_p without top_k must find the head of a 128k-token distribution without sorting all of it.
// Tokens are bucketed by x = (max - logit) / T = -log(weight) in steps of 1/8: one O(V) pass finds
// the buckets that hold the nucleus, and only their tokens are sorted. x is monotone in the logit,
// so every bucket's tokens come before the next bucket's in the ByLogit order.
constexpr int kBucketsPerUnit = 8;
constexpr int kBuckets = 1024;  // x < 128 covers every nonzero float weight (e^-104 underflows)

int Bucket(float logit, float max_logit, float temperature) {
  const float x = (max_logit - logit) / temperature;
  return x < float(kBuckets / kBucketsPerUnit) ? int(x * kBucketsPerUnit) : kBuckets - 1;
}

}  // namespace

Status ValidateSamplerParams(const SamplerParams& p, int vocab_size) {
  if (vocab_size <= 0) return Status::Errorf("sampler: vocab_size must be > 0, got {}", vocab_size);
  if (!Finite(p.temperature) || p.temperature < 0) {
    return Status::Errorf("sampler: temperature must be a finite number >= 0, got {}",
                          p.temperature);
  }
  // Written as !(inside) so that NaN, which fails every comparison, is rejected too.
  if (!(p.top_p > 0 && p.top_p <= 1)) {
    return Status::Errorf("sampler: top_p must be in (0, 1], got {}", p.top_p);
  }
  if (!(p.min_p >= 0 && p.min_p <= 1)) {
    return Status::Errorf("sampler: min_p must be in [0, 1], got {}", p.min_p);
  }
  if (!Finite(p.repeat_penalty) || p.repeat_penalty <= 0) {
    return Status::Errorf("sampler: repeat_penalty must be a finite number > 0, got {}",
                          p.repeat_penalty);
  }
  if (p.repeat_last_n < -1) {
    return Status::Errorf("sampler: repeat_last_n must be >= -1 (-1 = whole history), got {}",
                          p.repeat_last_n);
  }
  if (!Finite(p.presence_penalty)) {
    return Status::Errorf("sampler: presence_penalty must be finite, got {}", p.presence_penalty);
  }
  if (!Finite(p.frequency_penalty)) {
    return Status::Errorf("sampler: frequency_penalty must be finite, got {}", p.frequency_penalty);
  }
  for (const auto& [id, bias] : p.logit_bias) {
    if (id < 0 || id >= vocab_size) {
      return Status::Errorf("sampler: logit_bias token id {} is outside the vocabulary [0, {})", id,
                            vocab_size);
    }
    if (std::isnan(bias)) return Status::Errorf("sampler: logit_bias for token {} is NaN", id);
  }
  return Status::Ok();
}

Sampler::Sampler(SamplerParams params, int vocab_size)
    : params_(std::move(params)), vocab_size_(vocab_size), rng_(params_.seed) {
  CHECK(ValidateSamplerParams(params_, vocab_size_).ok());
  counts_.assign(vocab_size_, 0);
  cands_.reserve(vocab_size_);
}

void Sampler::ApplyPenalties(std::span<float> logits, std::span<const int> history) {
  const SamplerParams& p = params_;
  auto valid = [&](int id) { return id >= 0 && id < vocab_size_; };
  if (p.repeat_penalty != 1.0f && p.repeat_last_n != 0) {
    const size_t n =
        p.repeat_last_n < 0 ? history.size() : std::min(history.size(), size_t(p.repeat_last_n));
    std::span<const int> recent = history.last(n);
    // counts_ marks ids already penalised: a token repeated 5 times is penalised once (llama.cpp).
    for (int id : recent) {
      if (!valid(id) || counts_[id]) continue;
      counts_[id] = 1;
      float& l = logits[id];
      l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
    }
    for (int id : recent) {
      if (valid(id)) counts_[id] = 0;
    }
  }
  if (p.presence_penalty != 0 || p.frequency_penalty != 0) {
    // O(history) per call, not O(vocab): only touched counters are read and reset.
    for (int id : history) {
      if (valid(id)) ++counts_[id];
    }
    for (int id : history) {
      if (!valid(id) || counts_[id] == 0) continue;
      logits[id] -= p.presence_penalty + p.frequency_penalty * static_cast<float>(counts_[id]);
      counts_[id] = 0;
    }
  }
}

int Sampler::Greedy(std::span<const float> logits) {
  int best = 0;
  float best_logit = -kInf;
  for (int i = 0; i < vocab_size_; ++i) {
    if (logits[i] > best_logit) {  // strict: ties keep the lowest id; NaN never compares greater
      best_logit = logits[i];
      best = i;
    }
  }
  degenerate_ = best_logit == -kInf;
  return best;
}

size_t Sampler::SortNucleus(float max_logit, double target) {
  const float t = params_.temperature;
  bucket_mass_.assign(kBuckets, 0.0);
  for (const Candidate& c : cands_) bucket_mass_[Bucket(c.logit, max_logit, t)] += c.weight;
  int last = kBuckets - 1;
  double cum = 0;
  for (int b = 0; b < kBuckets; ++b) {
    cum += bucket_mass_[b];
    if (cum >= target) {
      last = b;
      break;
    }
  }
  // One bucket of slack: these sums round differently from the token-by-token sum that decides.
  last = std::min(last + 1, kBuckets - 1);
  auto in = [&](const Candidate& c) { return Bucket(c.logit, max_logit, t) <= last; };
  const auto mid = std::partition(cands_.begin(), cands_.end(), in);
  std::sort(cands_.begin(), mid, ByLogit);
  return size_t(mid - cands_.begin());
}

void Sampler::Truncate() {
  const SamplerParams& p = params_;
  bool sorted = false;
  if (p.top_k > 0 && size_t(p.top_k) < cands_.size()) {
    // O(V log k), and for small k mostly one comparison per token against the heap top: measured
    // several times faster than nth_element + sort at V = 128k, k = 40.
    std::partial_sort(cands_.begin(), cands_.begin() + p.top_k, cands_.end(), ByLogit);
    cands_.resize(p.top_k);
    sorted = true;
  }

  float max_logit = -kInf;
  for (const Candidate& c : cands_) max_logit = std::max(max_logit, c.logit);
  double total = 0;
  for (Candidate& c : cands_) {
    c.weight = std::exp((c.logit - max_logit) / p.temperature);  // the max gets exactly 1
    total += c.weight;
  }

  if (p.top_p < 1) {
    const double target = double(p.top_p) * total;
    // [0, sorted_end) is a sorted prefix of the (logit desc, id asc) order; the rest comes after.
    const size_t sorted_end = sorted ? cands_.size() : SortNucleus(max_logit, target);
    double cum = 0;
    size_t keep = cands_.size();
    for (size_t m = 0; m < cands_.size(); ++m) {
      if (m == sorted_end) std::sort(cands_.begin() + m, cands_.end(), ByLogit);  // rare: see above
      cum += cands_[m].weight;
      if (cum >= target) {
        keep = m + 1;
        break;
      }
    }
    cands_.resize(keep);
    sorted = true;
  }

  // min_p: p >= min_p * p_max is weight >= min_p, since the max weight is exactly 1. Weights that
  // underflowed to 0 can never be drawn; dropping them keeps LastProbs clean.
  auto drop = [&](const Candidate& c) { return !(c.weight > 0 && c.weight >= p.min_p); };
  if (sorted) {
    // Weights are non-increasing along a sorted prefix, so the survivors are a prefix.
    cands_.erase(std::find_if(cands_.begin(), cands_.end(), drop), cands_.end());
  } else {
    cands_.erase(std::remove_if(cands_.begin(), cands_.end(), drop), cands_.end());  // keeps order
  }
  kept_sum_ = 0;
  for (const Candidate& c : cands_) kept_sum_ += c.weight;
}

double Sampler::NextUniform() {
  // The top 53 bits of one 64-bit draw, scaled by 2^-53: exact, uniform on a grid in [0, 1).
  return double(rng_() >> 11) * 0x1.0p-53;
}

int Sampler::Sample(std::span<float> logits, std::span<const int> history) {
  CHECK(logits.size() == size_t(vocab_size_));
  for (const auto& [id, bias] : params_.logit_bias) logits[id] += bias;
  ApplyPenalties(logits, history);
  // After bias and penalties, since -inf + inf from a bias is NaN too.
  float max_logit = -kInf;
  for (float& l : logits) {
    if (std::isnan(l)) l = -kInf;
    max_logit = std::max(max_logit, l);
  }

  greedy_last_ = params_.temperature == 0;
  if (greedy_last_) return last_pick_ = Greedy(logits);

  kept_sum_ = 0;
  degenerate_ = max_logit == -kInf;
  if (degenerate_) {
    cands_.clear();
    return last_pick_ = 0;
  }
  // Written through an index into a presized vector: push_back's capacity check per token was
  // measurable at 128k tokens.
  cands_.resize(vocab_size_);
  size_t n = 0;
  if (max_logit == kInf) {
    // The limit of softmax as these logits grow together: uniform over them.
    for (int i = 0; i < vocab_size_; ++i) {
      if (logits[i] == kInf) cands_[n++] = {i, 0.0f, 0.0f};
    }
  } else {
    for (int i = 0; i < vocab_size_; ++i) {
      if (logits[i] > -kInf) cands_[n++] = {i, logits[i], 0.0f};
    }
  }
  cands_.resize(n);
  Truncate();

  // cands_ is non-empty with positive weights: the max (weight 1) survives every step above.
  const double target = NextUniform() * kept_sum_;
  double acc = 0;
  last_pick_ = cands_.back().id;  // if rounding makes target reach the total
  for (const Candidate& c : cands_) {
    acc += c.weight;
    if (target < acc) {
      last_pick_ = c.id;
      break;
    }
  }
  return last_pick_;
}

std::vector<TokenProb> Sampler::LastProbs() const {
  if (degenerate_) return {};
  if (greedy_last_) return {{last_pick_, 1.0f}};
  std::vector<TokenProb> out;
  out.reserve(cands_.size());
  for (const Candidate& c : cands_) out.push_back({c.id, float(c.weight / kept_sum_)});
  std::sort(out.begin(), out.end(), [](const TokenProb& a, const TokenProb& b) {
    return a.prob > b.prob || (a.prob == b.prob && a.id < b.id);
  });
  return out;
}

}  // namespace herd
