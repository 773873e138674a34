#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace herd {
namespace {

void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// How long an idle thread polls before it sleeps: long enough to bridge the gap between the
// matmuls of one token (tens of microseconds), short enough not to burn a core between requests.
constexpr auto kSpin = std::chrono::microseconds(200);

// Polls until done() or kSpin has passed; true if done() became true. After a short busy spin
// it yields the core on every poll: when the machine has more runnable threads than cores, the
// thread we wait for may be waiting for this very core.
template <typename Done>
bool SpinUntil(const Done& done) {
  constexpr int kBusyPolls = 1000;  // ~10 us of pause instructions
  for (int i = 0; i < kBusyPolls; ++i) {
    if (done()) return true;
    CpuRelax();
  }
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::yield();
  }
  return done();
}

}  // namespace

int ThreadPool::DefaultThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = DefaultThreads();
  for (int t = 1; t < n_threads; ++t) workers_.emplace_back([this, t] { WorkerLoop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  start_cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::RunItems(int thread) {
  for (size_t i = next_.fetch_add(1); i < job_n_; i = next_.fetch_add(1)) (*job_)(i, thread);
}

void ThreadPool::WorkerLoop(int thread) {
  uint64_t seen = 0;
  for (;;) {
    auto ready = [&] {
      return stop_.load() || generation_.load(std::memory_order_acquire) != seen;
    };
    if (!SpinUntil(ready)) {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, ready);
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    RunItems(thread);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);  // pairs with the caller's check-then-wait
      done_cv_.notify_all();
    }
  }
}

void ThreadPool::ParallelFor(size_t n, const std::function<void(size_t, int)>& fn) {
  if (n == 0) return;
  if (workers_.empty() || n == 1) {
    for (size_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  next_.store(0);
  pending_.store(static_cast<int>(workers_.size()));
  {
    std::lock_guard<std::mutex> lock(mu_);  // a worker between its check and its wait sees this
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  RunItems(0);
  auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!SpinUntil(done)) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, done);
  }
  job_ = nullptr;
}

void ParallelFor(ThreadPool* pool, size_t n, const std::function<void(size_t, int)>& fn) {
  if (pool) {
    pool->ParallelFor(n, fn);  // runs inline itself when n is 1 or the pool has no workers
    return;
  }
  for (size_t i = 0; i < n; ++i) fn(i, 0);
}

void ParallelForBlocks(ThreadPool* pool, int64_t n, int64_t per_item,
                       const std::function<void(int64_t)>& fn) {
  const int64_t items = (n + per_item - 1) / per_item;
  ParallelFor(pool, static_cast<size_t>(items), [&](size_t item, int) {
    const int64_t i0 = static_cast<int64_t>(item) * per_item;
    for (int64_t i = i0; i < std::min(n, i0 + per_item); ++i) fn(i);
  });
}

}  // namespace herd
