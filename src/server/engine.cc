#include "server/engine.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "generate/stop.h"
#include "tokenizer/stream_decoder.h"

namespace herd::server {

using Clock = std::chrono::steady_clock;

namespace {

SeqEvent Failed(int index, std::string error) {
  SeqEvent e;
  e.index = index;
  e.done = true;
  e.error = std::move(error);
  return e;
}

}  // namespace

void Inbox::Push(SeqEvent event) {
  {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
  }
  cv_.notify_all();
}

std::optional<SeqEvent> Inbox::Pop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return std::nullopt;
  SeqEvent e = std::move(events_.front());
  events_.pop_front();
  return e;
}

struct Engine::Slot {
  KVCache cache;
  std::vector<int> cached;  // the tokens whose keys and values the cache holds, in order
  // The sequence in the slot, if busy.
  bool busy = false;
  SeqParams params;
  std::shared_ptr<Inbox> inbox;
  int index = 0;
  uint64_t order = 0;  // admission order: earlier sequences get prompt chunks first
  std::optional<Sampler> sampler;
  std::optional<StopMatcher> stops;
  std::optional<StreamDecoder> decoder;
  std::vector<int> history;  // prompt + generated, for the penalties
  size_t prompt_done = 0;    // prompt tokens in the cache
  int next_token = -1;       // sampled, not yet run
  int generated = 0, cached_prompt = 0;
  Clock::time_point submitted, first_token;

  Slot(const LlamaConfig& config, int ctx, DType dtype) : cache(config, ctx, dtype) {}
};

Engine::Engine(const Model& model, const Tokenizer& tokenizer, EngineOptions options,
               Metrics* metrics)
    : model_(model),
      tokenizer_(tokenizer),
      options_(options),
      metrics_(metrics),
      pool_(options.threads) {
  for (int i = 0; i < options_.parallel; ++i)
    slots_.push_back(std::make_unique<Slot>(model.config, options_.ctx, options_.cache_type));
  thread_ = std::thread([this] { Loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t Engine::kv_cache_bytes() const {
  return options_.parallel * KVCache::BytesFor(model_.config, options_.ctx, options_.cache_type);
}

SubmitResult Engine::Submit(std::vector<SeqParams> seqs, std::shared_ptr<Inbox> inbox) {
  {
    std::lock_guard lock(mu_);
    if (draining_ || stopping_) return SubmitResult::kShuttingDown;
    // Free slots take sequences at once; only those left waiting count against the queue.
    const int64_t free_slots = std::max(0, options_.parallel - active_.load());
    const int64_t waiting = static_cast<int64_t>(queue_.size() + seqs.size()) - free_slots;
    if (waiting > options_.queue) return SubmitResult::kQueueFull;
    const auto now = Clock::now();
    for (size_t i = 0; i < seqs.size(); ++i)
      queue_.push_back({std::move(seqs[i]), inbox, static_cast<int>(i), now});
    queued_ = static_cast<int>(queue_.size());
  }
  cv_.notify_all();
  return SubmitResult::kOk;
}

bool Engine::Drain(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  draining_ = true;
  const bool finished = cv_.wait_for(lock, timeout, [&] { return queue_.empty() && active_ == 0; });
  if (finished) return true;
  // Cancel what is left; the loop reports each as cancelled.
  for (Pending& p : queue_) p.inbox->Cancel();
  for (auto& slot : slots_)
    if (slot->busy) slot->inbox->Cancel();
  cv_.notify_all();
  cv_.wait_for(lock, std::chrono::seconds(5), [&] { return queue_.empty() && active_ == 0; });
  return false;
}

void Engine::Loop() {
  while (true) {
    {
      std::unique_lock lock(mu_);
      // Wake at least every 100 ms, so a cancelled request waiting in the queue is dropped soon.
      cv_.wait_for(lock, std::chrono::milliseconds(100),
                   [&] { return stopping_ || !queue_.empty() || active_ > 0; });
      if (stopping_) break;
    }
    ReleaseCancelled();
    Admit();
    if (active_ > 0) Step();
    cv_.notify_all();  // Drain waits for the counts to reach zero
  }
  // Shutting down: whatever is left ends with an error.
  std::lock_guard lock(mu_);
  for (Pending& p : queue_) p.inbox->Push(Failed(p.index, "shutting down"));
  queue_.clear();
  for (auto& slot : slots_)
    if (slot->busy) Finish(slot.get(), "", "shutting down");
}

void Engine::ReleaseCancelled() {
  std::lock_guard lock(mu_);
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it->inbox->cancelled()) {
      it->inbox->Push(Failed(it->index, "cancelled"));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  queued_ = static_cast<int>(queue_.size());
  for (auto& slot : slots_)
    if (slot->busy && slot->inbox->cancelled()) Finish(slot.get(), "", "cancelled");
}

namespace {

size_t CommonPrefix(const std::vector<int>& a, const std::vector<int32_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

void Engine::Admit() {
  std::lock_guard lock(mu_);
  while (!queue_.empty()) {
    Pending& p = queue_.front();
    // The API validates requests; a caller that did not gets an error event, not a crash.
    Status valid = ValidateSamplerParams(p.params.sampler, model_.config.vocab_size);
    if (valid.ok() && (p.params.prompt.empty() || p.params.prompt.size() >= size_t(options_.ctx) ||
                       p.params.max_tokens < 1))
      valid = Status::Errorf("the prompt needs 1 to {} tokens and max_tokens >= 1 (got {} and {})",
                             options_.ctx - 1, p.params.prompt.size(), p.params.max_tokens);
    if (!valid.ok()) {
      p.inbox->Push(Failed(p.index, valid.message()));
      queue_.pop_front();
      continue;
    }
    // The free slot whose cache shares the longest prefix with the prompt (at least the prompt's
    // last token is run again: its logits give the first generated token). If another slot, busy
    // or not, shares a longer prefix, its keys and values are copied over instead.
    const size_t limit = p.params.prompt.size() - 1;
    Slot* best = nullptr;
    size_t best_common = 0;
    for (auto& slot : slots_) {
      if (slot->busy) continue;
      const size_t common = std::min(CommonPrefix(slot->cached, p.params.prompt), limit);
      if (!best || common > best_common) best = slot.get(), best_common = common;
    }
    if (!best) break;
    Slot* donor = nullptr;
    size_t donor_common = best_common;
    for (auto& slot : slots_) {
      if (slot.get() == best) continue;
      const size_t common = std::min(CommonPrefix(slot->cached, p.params.prompt), limit);
      if (common > donor_common) donor = slot.get(), donor_common = common;
    }
    Slot& s = *best;
    if (donor) {
      s.cache.CopyPrefix(donor->cache, static_cast<int>(donor_common));
      s.cached.assign(donor->cached.begin(), donor->cached.begin() + donor_common);
      best_common = donor_common;
    } else {
      s.cache.Truncate(static_cast<int>(best_common));
      s.cached.resize(best_common);
    }
    s.busy = true;
    s.params = std::move(p.params);
    s.inbox = std::move(p.inbox);
    s.index = p.index;
    s.order = admitted_++;
    s.sampler.emplace(s.params.sampler, model_.config.vocab_size);
    s.stops.emplace(s.params.stop_ids, s.params.stop_strings);
    s.decoder.emplace(tokenizer_);
    s.history.assign(s.params.prompt.begin(), s.params.prompt.end());
    s.prompt_done = best_common;
    s.next_token = -1;
    s.generated = 0;
    s.cached_prompt = static_cast<int>(best_common);
    s.submitted = p.submitted;
    metrics_->AddPromptTokens(s.params.prompt.size());
    metrics_->AddCachedPromptTokens(best_common);
    queue_.pop_front();
    ++active_;
  }
  queued_ = static_cast<int>(queue_.size());
}

void Engine::Finish(Slot* s, const std::string& finish, const std::string& error) {
  SeqEvent e = Failed(s->index, error);
  e.finish = finish;
  e.prompt_tokens = static_cast<int>(s->params.prompt.size());
  e.completion_tokens = s->generated;
  e.cached_tokens = s->cached_prompt;
  if (error.empty() && s->generated > 1) {
    const double seconds = std::chrono::duration<double>(Clock::now() - s->first_token).count();
    if (seconds > 0) metrics_->ObserveDecodeRate((s->generated - 1) / seconds);
  }
  s->inbox->Push(std::move(e));
  s->busy = false;
  s->inbox.reset();
  s->sampler.reset();
  s->stops.reset();
  s->decoder.reset();
  --active_;
}

namespace {

// The chosen token's log-probability under the model (log-softmax of the raw logits, before any
// sampling transform, as OpenAI reports it) and the k most likely alternatives.
TokenLogprob LogProbs(std::span<const float> logits, int chosen, int k) {
  float max = -INFINITY;
  for (float l : logits) max = std::max(max, l);
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max);
  const float log_z = max + static_cast<float>(std::log(sum));
  TokenLogprob out{chosen, logits[chosen] - log_z, {}};
  k = std::min<int>(k, static_cast<int>(logits.size()));
  if (k > 0) {
    std::vector<int> ids(logits.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int a, int b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (int i = 0; i < k; ++i) out.top.push_back({ids[i], logits[ids[i]] - log_z});
  }
  return out;
}

}  // namespace

void Engine::Step() {
  // Busy slots, decoding ones first, then prompt readers in admission order.
  std::vector<Slot*> busy;
  for (auto& slot : slots_)
    if (slot->busy) busy.push_back(slot.get());
  std::stable_sort(busy.begin(), busy.end(), [](const Slot* a, const Slot* b) {
    const bool da = a->next_token >= 0, db = b->next_token >= 0;
    return da != db ? da : a->order < b->order;
  });
  std::vector<BatchSeq> batch;
  std::vector<Slot*> in_batch, want;
  std::vector<int> one_token(busy.size());
  int budget = options_.step_tokens;
  for (size_t i = 0; i < busy.size(); ++i) {
    Slot* s = busy[i];
    if (s->next_token >= 0) {
      one_token[i] = s->next_token;
      batch.push_back({std::span<const int>(&one_token[i], 1), &s->cache, true});
      --budget;
    } else {
      const int left = static_cast<int>(s->params.prompt.size() - s->prompt_done);
      const int n = std::min(left, std::max(budget, 0));
      if (n == 0) continue;
      batch.push_back({std::span<const int>(s->params.prompt.data() + s->prompt_done, n), &s->cache,
                       n == left});
      budget -= n;
    }
    in_batch.push_back(s);
    if (batch.back().want_logits) want.push_back(s);
  }
  if (batch.empty()) return;
  std::vector<float> logits;
  const Status st = ForwardBatch(model_, batch, &logits, &pool_);
  std::lock_guard lock(mu_);
  if (!st.ok()) {
    for (Slot* s : in_batch) {
      s->cached.clear();  // unknown cache state: do not reuse it
      s->cache.Clear();
      Finish(s, "", st.message());
    }
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    Slot* s = in_batch[i];
    s->cached.insert(s->cached.end(), batch[i].tokens.begin(), batch[i].tokens.end());
    if (s->next_token < 0) s->prompt_done += batch[i].tokens.size();
  }
  const int vocab = model_.config.vocab_size;
  for (size_t w = 0; w < want.size(); ++w) {
    Slot* s = want[w];
    std::span<float> row(logits.data() + w * vocab, vocab);
    SeqEvent e;
    e.index = s->index;
    std::optional<TokenLogprob> lp;
    std::vector<float> raw;
    if (s->params.top_logprobs >= 0) raw.assign(row.begin(), row.end());
    const int id = s->sampler->Sample(row, s->history);
    if (s->sampler->degenerate()) {
      Finish(s, "", "no token can be sampled: every logit is -inf or NaN (check logit_bias)");
      continue;
    }
    if (!raw.empty()) e.logprobs.push_back(LogProbs(raw, id, s->params.top_logprobs));
    if (s->generated == 0) {
      s->first_token = Clock::now();
      metrics_->ObserveTimeToFirstToken(
          std::chrono::duration<double>(s->first_token - s->submitted).count());
    }
    std::string finish;
    bool stopped = false;
    if (s->stops->IsStopToken(id)) {
      finish = id == s->params.tool_call_id ? "tool_calls" : "stop";
      e.logprobs.clear();  // the stop token is not part of the completion
    } else {
      ++s->generated;
      metrics_->AddGeneratedTokens(1);
      s->history.push_back(id);
      auto piece = s->decoder->Push(id);
      if (!piece.ok()) {
        Finish(s, "", piece.status().message());
        continue;
      }
      e.text = s->stops->Push(*piece, &stopped);
      if (stopped)
        finish = "stop";
      else if (s->generated >= s->params.max_tokens || s->cache.size() >= s->cache.capacity())
        finish = "length";
    }
    if (finish.empty()) {
      s->next_token = id;
      if (!e.text.empty() || !e.logprobs.empty()) s->inbox->Push(std::move(e));
      continue;
    }
    if (!stopped) e.text += s->stops->Push(s->decoder->Flush(), &stopped) + s->stops->Flush();
    if (!e.text.empty() || !e.logprobs.empty()) s->inbox->Push(std::move(e));
    Finish(s, finish, "");
  }
}

}  // namespace herd::server
