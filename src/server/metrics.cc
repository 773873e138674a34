#include "server/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace herd::server {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::Render(const std::string& name, std::string* out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    *out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  *out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, count_);
  *out += fmt::format("{}_sum {}\n{}_count {}\n", name, sum_, name, count_);
}

Metrics::Metrics()
    : ttft_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      decode_rate_({1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}) {}

void Metrics::CountRequest(const std::string& route, int status) {
  std::lock_guard lock(mu_);
  ++requests_[{route, status}];
}
void Metrics::AddPromptTokens(uint64_t n) {
  std::lock_guard lock(mu_);
  prompt_tokens_ += n;
}
void Metrics::AddCachedPromptTokens(uint64_t n) {
  std::lock_guard lock(mu_);
  cached_prompt_tokens_ += n;
}
void Metrics::AddGeneratedTokens(uint64_t n) {
  std::lock_guard lock(mu_);
  generated_tokens_ += n;
}
void Metrics::ObserveTimeToFirstToken(double seconds) {
  std::lock_guard lock(mu_);
  ttft_.Observe(seconds);
}
void Metrics::ObserveDecodeRate(double tokens_per_second) {
  std::lock_guard lock(mu_);
  decode_rate_.Observe(tokens_per_second);
}

std::string Metrics::Render(const Gauges& g) const {
  std::lock_guard lock(mu_);
  std::string out;
  out += "# HELP herd_requests_total HTTP requests by route and status code.\n";
  out += "# TYPE herd_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += fmt::format("herd_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first,
                       key.second, n);
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n{} {}\n", name, help, name, name, v);
  };
  auto gauge = [&](const char* name, const char* help, uint64_t v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, help, name, name, v);
  };
  counter("herd_prompt_tokens_total", "Prompt tokens of admitted sequences.", prompt_tokens_);
  counter("herd_prompt_tokens_cached_total",
          "Prompt tokens reused from a slot's KV cache (not recomputed).", cached_prompt_tokens_);
  counter("herd_generated_tokens_total", "Tokens generated.", generated_tokens_);
  gauge("herd_queue_depth", "Sequences waiting for a slot.", g.queue_depth);
  gauge("herd_active_sequences", "Sequences holding a slot.", g.active_sequences);
  gauge("herd_slots", "Slots (sequences decoded together at most).", g.slots);
  gauge("herd_kv_cache_bytes", "Memory of all slots' KV caches.", g.kv_cache_bytes);
  out += "# HELP herd_time_to_first_token_seconds From request admission to its first token.\n";
  out += "# TYPE herd_time_to_first_token_seconds histogram\n";
  ttft_.Render("herd_time_to_first_token_seconds", &out);
  out +=
      "# HELP herd_decode_tokens_per_second Per-sequence generation speed after its first "
      "token.\n";
  out += "# TYPE herd_decode_tokens_per_second histogram\n";
  decode_rate_.Render("herd_decode_tokens_per_second", &out);
  return out;
}

}  // namespace herd::server
