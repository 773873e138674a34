// A fixed pool of worker threads for data-parallel loops: ParallelFor(n, fn) runs fn(i) for i in
// [0, n) over all workers plus the calling thread, and returns when every index is done.
//
// Decoding one token runs hundreds of short parallel loops (a few matmuls per layer), so hand-off
// latency matters: idle workers spin on an atomic generation counter for a short while before
// sleeping on a condition variable, and the caller spins for the last workers the same way.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace herd {

class ThreadPool {
 public:
  // n_threads counts the caller: n_threads == 1 runs everything inline. 0 = hardware concurrency.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Indices are handed out dynamically (work stealing by an atomic counter), so uneven items
  // balance. Not reentrant: fn must not call ParallelFor on the same pool.
  void ParallelFor(size_t n, const std::function<void(size_t index, int thread)>& fn);

  static int DefaultThreads();

 private:
  void WorkerLoop(int thread);
  void RunItems(int thread);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(size_t, int)>* job_ = nullptr;
  size_t job_n_ = 0;
  std::atomic<size_t> next_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};  // workers that have not finished the current job
  std::atomic<bool> stop_{false};
};

// fn(i, thread) for i < n: over pool's threads, or on the calling thread (thread 0) when pool is
// null. What every caller with an optional pool wants.
void ParallelFor(ThreadPool* pool, size_t n,
                 const std::function<void(size_t index, int thread)>& fn);

// fn(i) for i < n over the pool (or inline without one), per_item consecutive indices per work
// item: for per-index work (a row of a few hundred floats) that costs less than handing it out.
void ParallelForBlocks(ThreadPool* pool, int64_t n, int64_t per_item,
                       const std::function<void(int64_t index)>& fn);

}  // namespace herd
