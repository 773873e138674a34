// membw: this machine's ceilings for LLM inference, the numbers a tokens/s figure is judged
// against.
//
//   build/bench/membw [--threads T] [--size-mib M] [--reps R] [--quick] [--json]
//
// What each number is:
//   * read_gbps: memory READ bandwidth, 1e9 bytes/s. Each of t threads (t = 1..T) sums its own
//     contiguous slice of one buffer much larger than the last-level cache (default 1 GiB; the
//     pages are first touched by the thread that later reads them), with 512-bit loads at AVX-512,
//     256-bit loads at AVX2 (plain loads otherwise), 4 independent accumulators so the adds never
//     limit. Time is
//     from a common start to the last thread's finish; best of R reps. read_gbps is the best over
//     t.
//   * fp32_gflops (fp32_gflops_per_core): float32 multiply-add peak of all T threads (of one), 1e9
//     FLOP/s, an FMA counted as 2 FLOP. 12 independent FMA chains held in registers (AVX2 FMA:
//     12 x 8 lanes, or 12 x 16 at AVX-512; enough chains to cover FMA latency x throughput on
//     current x86 cores); without AVX2+FMA, 12 scalar multiply-add chains. No memory traffic: this
//     is the compute roof.
//   * int8_gops (int8_gops_per_core): the int8 dot-product roof of quantised matmuls, 1e9 ops/s
//     with one u8 x s8 multiply-add counted as 2 ops, measured with the instructions herd's
//     kernels use at the active level (int8_method): at AVX2 vpmaddubsw (u8 x s8 -> pairs summed
//     to s16) + vpmaddwd by 1 (-> s32) + vpaddd, 6 independent chains of 256 bits; at AVX-512 with
//     VNNI vpdpbusd (u8 x s8, 4 products summed into s32 in one instruction), 12 chains of 512
//     bits; at AVX-512 without VNNI the AVX2 sequence on 512 bits, 12 chains. Null below AVX2.
//
// How they are used (docs/PERFORMANCE.md): decoding one token reads every weight once (the KV cache
// too, small at short context), so
//     decode tokens/s <= read_gbps * 1e9 / (weight bytes read per token)
// e.g. 98 MB of SmolLM2-135M Q4_1 at 20 GB/s: <= ~200 tokens/s; `herd bench` prints the bytes.
// Prefill is compute-bound: tokens/s <= fp32_gflops * 1e9 / (2 * parameters) for the float32 path
// (int8_gops for a quantised-activation path). A kernel at a small fraction of its roof has
// headroom.
//
// The SIMD loops are compiled for AVX2 / AVX-512 per function (target attributes), chosen at run
// time from CPUID (herd's ActiveIsa: $HERD_ISA=avx2 or scalar forces a lower level; run it at each
// level to compare them); the binary stays baseline x86-64.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "base/cpu.h"

#if defined(__x86_64__)
#include "kernels/immintrin_avx512.h"
#define MEMBW_X86 1
#endif

namespace {

using Clock = std::chrono::steady_clock;

// Keeps results alive so the compiler cannot drop the loops that produce them.
volatile uint64_t g_sink;

// Runs fn(thread) on n threads released together (the caller is thread 0); returns the seconds from
// the common start to the last thread's finish.
double RunTogether(int n, const std::function<void(int)>& fn) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<Clock::time_point> end(n);
  std::vector<std::thread> workers;
  for (int t = 1; t < n; ++t) {
    workers.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      fn(t);
      end[t] = Clock::now();
    });
  }
  while (ready.load() < n - 1) std::this_thread::yield();
  const Clock::time_point start = Clock::now();
  go.store(true, std::memory_order_release);
  fn(0);
  end[0] = Clock::now();
  for (auto& w : workers) w.join();
  return std::chrono::duration<double>(*std::max_element(end.begin(), end.end()) - start).count();
}

// ---- read bandwidth ----

uint64_t SumScalar(const uint64_t* p, size_t n) {
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += p[i];
    a1 += p[i + 1];
    a2 += p[i + 2];
    a3 += p[i + 3];
  }
  for (; i < n; ++i) a0 += p[i];
  return a0 + a1 + a2 + a3;
}

#ifdef MEMBW_X86
__attribute__((target("avx2"))) uint64_t SumAvx2(const uint64_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {  // 128 bytes (two cache lines) per iteration
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + SumScalar(p + i, n - i);
}

__attribute__((target("avx512f"))) uint64_t SumAvx512(const uint64_t* p, size_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {  // 256 bytes (four cache lines) per iteration
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 8));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 16));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 24));
  }
  const __m512i s = _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3));
  return static_cast<uint64_t>(_mm512_reduce_add_epi64(s)) + SumScalar(p + i, n - i);
}
#endif

// ---- fp32 FMA peak ----

constexpr int kFmaChains = 12;
// acc = acc * a + b converges to b / (1 - a) = 1: no overflow, no denormals, whatever the count.
constexpr float kA = 0.999999f, kB = 1e-6f;

// 2 FLOP per chain per iteration. Named scalars, not an array: an array is either packed into SSE
// vectors by the compiler or kept in memory, and neither measures scalar arithmetic.
float FmaScalar(int64_t iters) {
  float a0 = 0.50f, a1 = 0.51f, a2 = 0.52f, a3 = 0.53f, a4 = 0.54f, a5 = 0.55f;
  float a6 = 0.56f, a7 = 0.57f, a8 = 0.58f, a9 = 0.59f, a10 = 0.60f, a11 = 0.61f;
  static_assert(kFmaChains == 12);
  for (int64_t i = 0; i < iters; ++i) {
    a0 = a0 * kA + kB;
    a1 = a1 * kA + kB;
    a2 = a2 * kA + kB;
    a3 = a3 * kA + kB;
    a4 = a4 * kA + kB;
    a5 = a5 * kA + kB;
    a6 = a6 * kA + kB;
    a7 = a7 * kA + kB;
    a8 = a8 * kA + kB;
    a9 = a9 * kA + kB;
    a10 = a10 * kA + kB;
    a11 = a11 * kA + kB;
#ifdef MEMBW_X86
    // Each chain stays a scalar in its own register (no packing of chains into SSE vectors).
    asm("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
    asm("" : "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
#endif
  }
  return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
}

#ifdef MEMBW_X86
// 16 FLOP per chain per iteration (8 lanes x multiply + add).
__attribute__((target("avx2,fma"))) float FmaAvx2(int64_t iters) {
  const __m256 a = _mm256_set1_ps(kA), b = _mm256_set1_ps(kB);
  __m256 acc[kFmaChains];
  for (int c = 0; c < kFmaChains; ++c) acc[c] = _mm256_set1_ps(0.5f + c * 0.01f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kFmaChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  }
  __m256 s = acc[0];
  for (int c = 1; c < kFmaChains; ++c) s = _mm256_add_ps(s, acc[c]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float total = 0;
  for (float x : lanes) total += x;
  return total;
}

// 32 FLOP per chain per iteration (16 lanes x multiply + add).
__attribute__((target("avx512f"))) float FmaAvx512(int64_t iters) {
  const __m512 a = _mm512_set1_ps(kA), b = _mm512_set1_ps(kB);
  __m512 acc[kFmaChains];
  for (int c = 0; c < kFmaChains; ++c) acc[c] = _mm512_set1_ps(0.5f + c * 0.01f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kFmaChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  }
  __m512 s = acc[0];
  for (int c = 1; c < kFmaChains; ++c) s = _mm512_add_ps(s, acc[c]);
  return _mm512_reduce_add_ps(s);
}

// ---- int8 dot peak ----

constexpr int kInt8Chains = 6;

// 32 u8 x s8 multiply-adds per chain per iteration.
__attribute__((target("avx2"))) int32_t Int8DotAvx2(int64_t iters) {
  // 6 distinct (x, w) pairs from 3 inputs and 2 weights: with the 6 accumulators and `ones`, 12
  // of the 16 vector registers, leaving room for the products.
  const __m256i w[2] = {_mm256_set1_epi8(3), _mm256_set1_epi8(-2)};
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i x0 = _mm256_set1_epi8(1), x1 = _mm256_set1_epi8(2), x2 = _mm256_set1_epi8(3);
  __m256i acc[kInt8Chains];
  for (__m256i& a : acc) a = _mm256_setzero_si256();
  for (int64_t i = 0; i < iters; ++i) {
    // The inputs "change" every iteration, so the products are not hoisted out of the loop.
    asm("" : "+x"(x0), "+x"(x1), "+x"(x2));
    const __m256i x[3] = {x0, x1, x2};
#pragma GCC unroll 6
    for (int c = 0; c < kInt8Chains; ++c) {
      const __m256i p16 = _mm256_maddubs_epi16(x[c % 3], w[c / 3]);     // u8 x s8, pairs -> s16
      acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(p16, ones));  // pairs -> s32
    }
  }
  __m256i s = acc[0];
  for (int c = 1; c < kInt8Chains; ++c) s = _mm256_add_epi32(s, acc[c]);
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  int32_t total = 0;
  for (int32_t v : lanes) total += v;
  return total;
}

// 512-bit chains: 12 distinct (x, w) pairs from 4 inputs and 3 weights (equal pairs would let the
// compiler share products); 32 registers hold them, the accumulators and the products.
constexpr int kInt8Chains512 = 12;

// 64 u8 x s8 multiply-adds per chain per iteration: vpdpbusd (4 products summed into each s32).
__attribute__((target("avx512f,avx512bw,avx512vnni"))) int32_t Int8DotVnni512(int64_t iters) {
  const __m512i w[3] = {_mm512_set1_epi8(3), _mm512_set1_epi8(-2), _mm512_set1_epi8(5)};
  __m512i x0 = _mm512_set1_epi8(1), x1 = _mm512_set1_epi8(2), x2 = _mm512_set1_epi8(3),
          x3 = _mm512_set1_epi8(4);
  __m512i acc[kInt8Chains512];
  for (__m512i& a : acc) a = _mm512_setzero_si512();
  for (int64_t i = 0; i < iters; ++i) {
    asm("" : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3));
    const __m512i x[4] = {x0, x1, x2, x3};
#pragma GCC unroll 12
    for (int c = 0; c < kInt8Chains512; ++c)
      acc[c] = _mm512_dpbusd_epi32(acc[c], x[c % 4], w[c / 4]);
  }
  __m512i s = acc[0];
  for (int c = 1; c < kInt8Chains512; ++c) s = _mm512_add_epi32(s, acc[c]);
  return _mm512_reduce_add_epi32(s);
}

// The same without VNNI: vpmaddubsw + vpmaddwd by 1 + vpaddd on 512 bits.
__attribute__((target("avx512f,avx512bw"))) int32_t Int8DotAvx512(int64_t iters) {
  const __m512i w[3] = {_mm512_set1_epi8(3), _mm512_set1_epi8(-2), _mm512_set1_epi8(5)};
  const __m512i ones = _mm512_set1_epi16(1);
  __m512i x0 = _mm512_set1_epi8(1), x1 = _mm512_set1_epi8(2), x2 = _mm512_set1_epi8(3),
          x3 = _mm512_set1_epi8(4);
  __m512i acc[kInt8Chains512];
  for (__m512i& a : acc) a = _mm512_setzero_si512();
  for (int64_t i = 0; i < iters; ++i) {
    asm("" : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3));
    const __m512i x[4] = {x0, x1, x2, x3};
#pragma GCC unroll 12
    for (int c = 0; c < kInt8Chains512; ++c) {
      const __m512i p16 = _mm512_maddubs_epi16(x[c % 4], w[c / 4]);
      acc[c] = _mm512_add_epi32(acc[c], _mm512_madd_epi16(p16, ones));
    }
  }
  __m512i s = acc[0];
  for (int c = 1; c < kInt8Chains512; ++c) s = _mm512_add_epi32(s, acc[c]);
  return _mm512_reduce_add_epi32(s);
}
#endif

struct Options {
  int threads = 0, reps = 5;
  size_t size_mib = 1024;
  int64_t fma_iters = 40'000'000, int8_iters = 40'000'000;
  bool json = false;
};

// Best (shortest) time of `reps` runs of fn on n threads.
double BestOf(int reps, int n, const std::function<void(int)>& fn) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) best = std::min(best, RunTogether(n, fn));
  return best;
}

int Usage() {
  std::fprintf(stderr,
               "usage: membw [--threads T (0 = all cores)] [--size-mib M (default 1024)] "
               "[--reps R (default 5)] [--quick] [--json]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--json") {
      o.json = true;
    } else if (a == "--quick") {  // a smoke run: ~1 s
      o.size_mib = 256;
      o.reps = 2;
      o.fma_iters = o.int8_iters = 5'000'000;
    } else if (a == "--threads" && has_value) {
      o.threads = std::atoi(argv[++i]);
    } else if (a == "--reps" && has_value) {
      o.reps = std::atoi(argv[++i]);
    } else if (a == "--size-mib" && has_value) {
      o.size_mib = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "membw: unknown or incomplete flag %s\n", a.c_str());
      return Usage();
    }
  }
  if (o.threads < 0 || o.reps < 1 || o.size_mib < 1) return Usage();
  const int max_threads =
      o.threads > 0 ? o.threads : std::max(1, int(std::thread::hardware_concurrency()));
  const herd::Isa isa = herd::ActiveIsa();
  const bool avx2 = isa >= herd::Isa::kAvx2, avx512 = isa >= herd::Isa::kAvx512;
  const bool vnni = avx512 && herd::DetectCpu().avx512vnni;
  const char* int8_method = vnni     ? "vpdpbusd zmm"
                            : avx512 ? "vpmaddubsw+vpmaddwd zmm"
                            : avx2   ? "vpmaddubsw+vpmaddwd ymm"
                                     : nullptr;
  std::fprintf(stderr, "membw: cpu %s; %zu MiB buffer, %d reps (best kept), 1..%d threads\n",
               herd::DescribeCpu().c_str(), o.size_mib, o.reps, max_threads);

  // Buffer: 64-byte aligned; each slice is first touched by the thread that will read it.
  const size_t bytes = o.size_mib << 20, n = bytes / sizeof(uint64_t);
  std::unique_ptr<uint64_t, decltype(&std::free)> buf(
      static_cast<uint64_t*>(std::aligned_alloc(64, bytes)), &std::free);
  if (!buf) {
    std::fprintf(stderr, "membw: cannot allocate %zu MiB\n", o.size_mib);
    return 1;
  }
  RunTogether(max_threads, [&](int t) {
    const size_t lo = n * t / max_threads, hi = n * (t + 1) / max_threads;
    for (size_t i = lo; i < hi; ++i) buf.get()[i] = i;
  });

  std::vector<std::pair<int, double>> read_gbps;  // (threads, GB/s)
  for (int t = 1; t <= max_threads; ++t) {
    std::vector<uint64_t> sums(t);
    const double s = BestOf(o.reps, t, [&](int th) {
      // Slices on 4 KiB boundaries (and so 32-byte aligned for the aligned loads).
      const size_t lo = n * th / t / 512 * 512, hi = th + 1 == t ? n : n * (th + 1) / t / 512 * 512;
#ifdef MEMBW_X86
      if (avx512) {
        sums[th] = SumAvx512(buf.get() + lo, hi - lo);
        return;
      }
      if (avx2) {
        sums[th] = SumAvx2(buf.get() + lo, hi - lo);
        return;
      }
#endif
      sums[th] = SumScalar(buf.get() + lo, hi - lo);
    });
    uint64_t total = 0;
    for (uint64_t x : sums) total += x;
    if (total != uint64_t(n) * (n - 1) / 2) {  // the buffer holds 0..n-1
      std::fprintf(stderr, "membw: internal error: wrong sum\n");
      return 1;
    }
    read_gbps.push_back({t, bytes / s / 1e9});
    std::fprintf(stderr, "membw: read, %d threads: %.2f GB/s\n", t, bytes / s / 1e9);
  }

  // FLOP roofs: 1 thread (per core) and all threads.
  auto fp32 = [&](int t) {
    const double flop_per_iter = avx512 ? kFmaChains * 32.0
                                 : avx2 ? kFmaChains * 16.0
                                        : kFmaChains * 2.0;
    const double s = BestOf(o.reps, t, [&](int) {
#ifdef MEMBW_X86
      if (avx512) {
        g_sink = static_cast<uint64_t>(FmaAvx512(o.fma_iters));
        return;
      }
      if (avx2) {
        g_sink = static_cast<uint64_t>(FmaAvx2(o.fma_iters));
        return;
      }
#endif
      g_sink = static_cast<uint64_t>(FmaScalar(o.fma_iters));
    });
    return flop_per_iter * o.fma_iters * t / s / 1e9;
  };
  const double fp32_1 = fp32(1), fp32_all = fp32(max_threads);
  std::fprintf(stderr, "membw: fp32 FMA: %.1f GFLOP/s per core, %.1f all threads\n", fp32_1,
               fp32_all);
  double int8_1 = 0, int8_all = 0;
#ifdef MEMBW_X86
  if (avx2) {
    auto int8 = [&](int t) {
      const double s = BestOf(o.reps, t, [&](int) {
        g_sink = static_cast<uint64_t>(vnni     ? Int8DotVnni512(o.int8_iters)
                                       : avx512 ? Int8DotAvx512(o.int8_iters)
                                                : Int8DotAvx2(o.int8_iters));
      });
      const double ops_per_iter = avx512 ? kInt8Chains512 * 64 * 2.0 : kInt8Chains * 32 * 2.0;
      return ops_per_iter * o.int8_iters * t / s / 1e9;
    };
    int8_1 = int8(1);
    int8_all = int8(max_threads);
    std::fprintf(stderr, "membw: int8 dot (%s): %.1f Gop/s per core, %.1f all threads\n",
                 int8_method, int8_1, int8_all);
  }
#endif

  double best_read = 0;
  for (const auto& [t, g] : read_gbps) best_read = std::max(best_read, g);
  if (o.json) {
    nlohmann::json by_threads = nlohmann::json::array();
    for (const auto& [t, g] : read_gbps) by_threads.push_back({{"threads", t}, {"gbps", g}});
    nlohmann::json out = {
        {"cpu", herd::DescribeCpu()},
        {"isa", herd::IsaName(isa)},
        {"threads", max_threads},
        {"buffer_bytes", bytes},
        {"reps", o.reps},
        {"read_gbps", best_read},
        {"read_gbps_1_thread", read_gbps.front().second},
        {"read_gbps_by_threads", by_threads},
        {"fp32_gflops", fp32_all},
        {"fp32_gflops_per_core", fp32_1},
        {"int8_method", int8_method ? nlohmann::json(int8_method) : nlohmann::json()},
        {"int8_gops", avx2 ? nlohmann::json(int8_all) : nlohmann::json()},
        {"int8_gops_per_core", avx2 ? nlohmann::json(int8_1) : nlohmann::json()}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::printf("| %-34s | %7s | %14s |\n", "test", "threads", "value");
  std::printf("| %-34s | %7s | %14s |\n", "----------------------------------",
              "------:", "-------------:");
  for (const auto& [t, g] : read_gbps)
    std::printf("| %-34s | %7d | %9.2f GB/s |\n", "memory read", t, g);
  const std::string fma_name = std::string("fp32 FMA peak (") + herd::IsaName(isa) + ")";
  std::printf("| %-34s | %7d | %7.1f GFLOP/s |\n", fma_name.c_str(), 1, fp32_1);
  std::printf("| %-34s | %7d | %7.1f GFLOP/s |\n", fma_name.c_str(), max_threads, fp32_all);
  if (avx2) {
    const std::string int8_name = std::string("int8 dot (") + int8_method + ")";
    std::printf("| %-34s | %7d | %9.1f Gop/s |\n", int8_name.c_str(), 1, int8_1);
    std::printf("| %-34s | %7d | %9.1f Gop/s |\n", int8_name.c_str(), max_threads, int8_all);
  }
  std::printf(
      "decode ceiling: %.1f tokens/s per GB of weights read per token (read bandwidth / weight "
      "bytes)\n",
      best_read);
  return 0;
}
