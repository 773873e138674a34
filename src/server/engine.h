// The serving engine: continuous batching of many sequences over one model.
//
// A fixed number of slots (--parallel), each with its own KV cache of --ctx positions, is set up at
// start, so the memory budget is known before the first request. Requests wait in a bounded queue
// for a free slot. One engine thread runs steps: every active sequence that is decoding contributes
// its next token, sequences still reading their prompt contribute a chunk of it (at most
// step_tokens rows per step in all, so a long newcomer's prompt is spread over several steps and
// does not stall the others), and the whole step is one ForwardBatch: each weight is read once per
// step for all sequences. New requests join between steps.
//
// A slot remembers the tokens its cache holds after its sequence ends; a new request goes to the
// free slot whose cached tokens share the longest prefix with its prompt (same system prompt, the
// previous turn of a chat), and only the rest of its prompt is run.
//
// Results flow to the request's Inbox as events; cancelling the inbox (client gone) frees the slot
// at the next step. Each sequence samples with its own Sampler, so a sequence's tokens do not
// depend on what else is in the batch (ForwardBatch rows are bit-identical to a lone Forward).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/thread_pool.h"
#include "generate/sampler.h"
#include "model/forward.h"
#include "server/metrics.h"
#include "tokenizer/tokenizer.h"

namespace herd::server {

struct SeqParams {
  std::vector<int32_t> prompt;  // non-empty, shorter than the context
  int max_tokens = 16;          // >= 1
  SamplerParams sampler;
  std::vector<int> stop_ids;
  int tool_call_id = -1;  // a stop id that means "tool call pending" (<|eom_id|>), or -1
  std::vector<std::string> stop_strings;
  int top_logprobs = -1;  // < 0: no logprobs; else the chosen token's and this many alternatives
};

struct TokenLogprob {
  int id = 0;
  float logprob = 0;
  std::vector<std::pair<int, float>> top;  // (id, logprob), best first
};

// What a sequence reports, in order: text as it completes, then one event with done set.
struct SeqEvent {
  int index = 0;                       // which of the request's sequences (OpenAI's choice index)
  std::string text;                    // newly completed text: valid UTF-8, stop strings removed
  std::vector<TokenLogprob> logprobs;  // tokens sampled in this step (only with top_logprobs >= 0)
  bool done = false;
  std::string finish;  // when done: "stop", "length" or "tool_calls"; empty on error
  int prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;  // when done
  std::string error;                                                // set on failure
};

// One request's mailbox: the engine pushes, the HTTP handler pops.
class Inbox {
 public:
  void Push(SeqEvent event);
  // The next event, or nullopt after `timeout` without one.
  std::optional<SeqEvent> Pop(std::chrono::milliseconds timeout);
  void Cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<SeqEvent> events_;
  std::atomic<bool> cancelled_{false};
};

struct EngineOptions {
  int parallel = 4;       // slots (sequences decoded together)
  int ctx = 4096;         // positions per slot
  int queue = 64;         // sequences that may wait for a slot
  int step_tokens = 128;  // rows per step (decode tokens + prompt chunks)
  DType cache_type = DType::kF16;
  int threads = 0;  // compute threads (0: all cores)
};

enum class SubmitResult { kOk, kQueueFull, kShuttingDown };

class Engine {
 public:
  Engine(const Model& model, const Tokenizer& tokenizer, EngineOptions options, Metrics* metrics);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues the sequences (all or none); they report to inbox with indices 0..n-1. kQueueFull when
  // more than `queue` sequences would wait for a slot.
  SubmitResult Submit(std::vector<SeqParams> seqs, std::shared_ptr<Inbox> inbox);

  // Stops admitting, waits up to `timeout` for queued and active sequences to finish, then
  // cancels what is left (each gets a done event with an error). Returns whether all finished.
  bool Drain(std::chrono::milliseconds timeout);

  const EngineOptions& options() const { return options_; }
  int active() const { return active_; }
  int queued() const { return queued_; }
  uint64_t kv_cache_bytes() const;

 private:
  struct Pending {
    SeqParams params;
    std::shared_ptr<Inbox> inbox;
    int index;
    std::chrono::steady_clock::time_point submitted;
  };
  struct Slot;

  void Loop();
  void Admit();             // moves queued sequences into free slots (engine thread)
  void ReleaseCancelled();  // frees slots and queue entries of cancelled inboxes
  void Step();              // one batched forward + sampling
  void Finish(Slot* slot, const std::string& finish, const std::string& error);

  const Model& model_;
  const Tokenizer& tokenizer_;
  const EngineOptions options_;
  Metrics* metrics_;
  ThreadPool pool_;
  std::vector<std::unique_ptr<Slot>> slots_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false, draining_ = false;
  std::atomic<int> active_{0}, queued_{0};
  std::thread thread_;
  uint64_t admitted_ = 0;  // admission counter (prefill order)
};

}  // namespace herd::server
