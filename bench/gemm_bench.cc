// GFLOP/s of kernels/gemm.h's Gemm on the shapes herd train runs (compare with the fp32 FMA
// ceiling bench/membw prints for the same thread count).
//
//   build/bench/gemm_bench [--threads T] [--reps R] [--isa scalar|avx2|avx512] [M N K LAYOUT]...
//
// LAYOUT names A's and B's storage: "nn" (A [m,k], B [k,n] row-major), "nt" (B stored as [n,k]:
// x w^T, the forward), "tn" (A stored as [k,m]: dy^T x, a weight gradient). Default shapes: the
// `tiny` preset's output projection (vocabulary 128256, dim 64, 512 tokens) forward, dx and dw,
// and a square 1024 product.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "base/thread_pool.h"
#include "kernels/gemm.h"

namespace {

struct Case {
  int64_t m, n, k;
  std::string layout;
};

int Usage() {
  std::fprintf(stderr,
               "usage: gemm_bench [--threads T] [--reps R] [--isa scalar|avx2|avx512] "
               "[M N K nn|nt|tn]...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace herd;
  int threads = 2, reps = 5;
  Isa isa = ActiveIsa();
  std::vector<Case> cases;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (arg == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (arg == "--isa" && i + 1 < argc) {
      if (!ParseIsa(argv[++i], &isa)) return Usage();
    } else if (i + 3 < argc) {
      cases.push_back(
          {std::atoll(argv[i]), std::atoll(argv[i + 1]), std::atoll(argv[i + 2]), argv[i + 3]});
      i += 3;
    } else {
      return Usage();
    }
  }
  if (threads < 1 || reps < 1) return Usage();
  if (cases.empty())
    cases = {{512, 128256, 64, "nt"},
             {512, 64, 128256, "nn"},
             {128256, 64, 512, "tn"},
             {1024, 1024, 1024, "nn"}};
  ThreadPool pool(threads);
  std::printf("isa %s, %d threads, best of %d\n", IsaName(isa), threads, reps);
  for (const Case& c : cases) {
    if (c.m < 1 || c.n < 1 || c.k < 1 || (c.layout != "nn" && c.layout != "nt" && c.layout != "tn"))
      return Usage();
    std::vector<float> a(c.m * c.k, 0.5f), b(c.k * c.n, 0.25f), out(c.m * c.n);
    const kernels::StridedMat av = c.layout == "tn" ? kernels::StridedMat{a.data(), 1, c.m}
                                                    : kernels::StridedMat{a.data(), c.k, 1};
    const kernels::StridedMat bv = c.layout == "nt" ? kernels::StridedMat{b.data(), 1, c.k}
                                                    : kernels::StridedMat{b.data(), c.n, 1};
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      kernels::Gemm(c.m, c.n, c.k, av, bv, out.data(), c.n, false, &pool, isa);
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double flop = 2.0 * c.m * c.n * c.k;
    std::printf("%7lld x %7lld x %7lld %s: %8.2f ms, %6.1f GFLOP/s\n", static_cast<long long>(c.m),
                static_cast<long long>(c.n), static_cast<long long>(c.k), c.layout.c_str(),
                best * 1e3, flop / best * 1e-9);
  }
  return 0;
}
