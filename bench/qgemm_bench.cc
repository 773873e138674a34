// Integer GEMM (kernels/qgemm.h) on packed weights: tokens/s and Gop/s of one matrix times a batch
// of activation rows, the prefill products of herd's models (compare the Gop/s with the
// "int8 dot (vpdpbusd zmm)" ceiling bench/membw prints for the same thread count; one
// multiply-add counts as 2 ops).
//
//   build/bench/qgemm_bench [--threads T] [--reps R] [--tokens N] [--isa scalar|avx2|avx512]
//                           [DTYPE ROWS COLS]...
//
// DTYPE: q8_0 | q4_0 | q4_k | q6_k. Default cases: the Llama 3.2 1B feed-forward shapes (gate/up
// 8192 x 2048, down 2048 x 8192) in q4_k and q6_k, 512 tokens. The weights are random, quantised
// with herd's own quantiser, packed once; the activation quantisation is part of each timed call,
// as in inference.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "base/dtype.h"
#include "base/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/qgemm.h"
#include "kernels/quant.h"

namespace {

struct Case {
  std::string dtype;
  int64_t rows, cols;
};

int Usage() {
  std::fprintf(stderr,
               "usage: qgemm_bench [--threads T] [--reps R] [--tokens N] "
               "[--isa scalar|avx2|avx512] [q8_0|q4_0|q4_k|q6_k ROWS COLS]...\n");
  return 2;
}

bool ParseDType(const std::string& s, herd::DType* t) {
  using herd::DType;
  if (s == "q8_0")
    *t = DType::kQ8_0;
  else if (s == "q4_0")
    *t = DType::kQ4_0;
  else if (s == "q4_k")
    *t = DType::kQ4_K;
  else if (s == "q6_k")
    *t = DType::kQ6_K;
  else
    return false;
  return true;
}

std::vector<float> Random(int64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace herd;
  int threads = 2, reps = 5;
  int64_t tokens = 512;
  Isa isa = ActiveIsa();
  std::vector<Case> cases;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (arg == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (arg == "--tokens" && i + 1 < argc) {
      tokens = std::atoll(argv[++i]);
    } else if (arg == "--isa" && i + 1 < argc) {
      if (!ParseIsa(argv[++i], &isa)) return Usage();
    } else if (i + 2 < argc) {
      cases.push_back({argv[i], std::atoll(argv[i + 1]), std::atoll(argv[i + 2])});
      i += 2;
    } else {
      return Usage();
    }
  }
  if (threads < 1 || reps < 1 || tokens < 1) return Usage();
  if (cases.empty()) {
    cases = {{"q4_k", 8192, 2048}, {"q4_k", 2048, 8192}, {"q6_k", 2048, 8192}};
  }
  ThreadPool pool(threads);
  std::printf("| dtype | rows | cols | tokens | threads | isa | ms/call | Gop/s |\n");
  std::printf("| ----- | ---: | ---: | -----: | ------: | --- | ------: | ----: |\n");
  for (const Case& c : cases) {
    DType t;
    if (!ParseDType(c.dtype, &t) || c.rows < 1 || c.cols < 256 || c.cols % 256 != 0) {
      std::fprintf(stderr, "qgemm_bench: bad case %s %lld %lld (cols: a multiple of 256)\n",
                   c.dtype.c_str(), static_cast<long long>(c.rows), static_cast<long long>(c.cols));
      return 2;
    }
    const std::vector<float> wf = Random(c.rows * c.cols, 1, 0.05f);
    const uint64_t row_bytes = *BytesFor(t, c.cols);
    std::vector<uint8_t> wq(row_bytes * c.rows);
    for (int64_t r = 0; r < c.rows; ++r) {
      kernels::QuantizeRow(t, wf.data() + r * c.cols, c.cols, wq.data() + r * row_bytes);
    }
    kernels::MatView w = kernels::MakeMatView(t, c.rows, c.cols, wq.data());
    const kernels::PackedMat packed = kernels::Pack(w, &pool);
    w.packed = &packed;
    const std::vector<float> x = Random(tokens * c.cols, 2, 1.0f);
    std::vector<float> out(tokens * c.rows);
    const kernels::MatMulOut p{w, out.data()};
    kernels::MatMulShared({&p, 1}, x.data(), tokens, &pool, isa);  // warm-up
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      kernels::MatMulShared({&p, 1}, x.data(), tokens, &pool, isa);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::min(best, s);
    }
    double check = 0;
    for (float v : out) check += std::fabs(v);
    if (!std::isfinite(check)) {
      std::fprintf(stderr, "qgemm_bench: non-finite output\n");
      return 1;
    }
    const double ops = 2.0 * static_cast<double>(c.rows) * c.cols * tokens;
    std::printf("| %s | %lld | %lld | %lld | %d | %s | %.2f | %.1f |\n", c.dtype.c_str(),
                static_cast<long long>(c.rows), static_cast<long long>(c.cols),
                static_cast<long long>(tokens), threads, IsaName(isa), best * 1e3,
                ops / best * 1e-9);
  }
  return 0;
}
