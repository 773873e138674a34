// Server metrics in Prometheus' text exposition format (GET /metrics): counters, gauges read at
// scrape time, and histograms of time to first token and per-sequence decode speed.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace herd::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);  // upper bounds, increasing (+Inf is implied)
  void Observe(double value);
  // Appends the _bucket / _sum / _count lines of metric `name`.
  void Render(const std::string& name, std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Gauges the server owns; read when /metrics is scraped.
struct Gauges {
  int queue_depth = 0, active_sequences = 0, slots = 0;
  uint64_t kv_cache_bytes = 0;
};

class Metrics {
 public:
  Metrics();
  void CountRequest(const std::string& route, int status);
  void AddPromptTokens(uint64_t n);
  void AddCachedPromptTokens(uint64_t n);  // prompt tokens reused from a slot's cache
  void AddGeneratedTokens(uint64_t n);
  void ObserveTimeToFirstToken(double seconds);
  void ObserveDecodeRate(double tokens_per_second);
  std::string Render(const Gauges& gauges) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, cached_prompt_tokens_ = 0, generated_tokens_ = 0;
  Histogram ttft_, decode_rate_;
};

}  // namespace herd::server
