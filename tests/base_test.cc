#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "base/cpu.h"
#include "base/status.h"
#include "base/thread_pool.h"

namespace herd {
namespace {

TEST(ThreadPool, EveryIndexRunsExactlyOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (size_t n : {0u, 1u, 3u, 1000u}) {
      std::vector<std::atomic<int>> hits(n);
      pool.ParallelFor(n, [&](size_t i, int t) {
        ASSERT_LT(t, threads);
        hits[i]++;
      });
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << i;
    }
  }
}

TEST(ThreadPool, ReusedManyTimes) {
  ThreadPool pool(3);
  std::atomic<long> sum{0};
  for (int rep = 0; rep < 500; ++rep) pool.ParallelFor(17, [&](size_t i, int) { sum += i; });
  EXPECT_EQ(sum.load(), 500L * (16 * 17 / 2));
}

Result<int> Half(int x) {
  if (x % 2) return Status::Errorf("{} is odd", x);
  return x / 2;
}

Status Quarter(int x, int* out) {
  HERD_ASSIGN_OR_RETURN(int h, Half(x));
  HERD_ASSIGN_OR_RETURN(*out, Half(h));
  return Status::Ok();
}

TEST(Status, PropagatesErrors) {
  int q = 0;
  EXPECT_TRUE(Quarter(8, &q).ok());
  EXPECT_EQ(q, 2);
  Status s = Quarter(6, &q);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "3 is odd");
  auto r = Half(5);
  const std::string& msg = r.status().message();  // must stay valid while r lives
  EXPECT_EQ(msg, "5 is odd");
}

TEST(Cpu, IsaNamesRoundTripAndLevelsOrder) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    Isa parsed;
    ASSERT_TRUE(ParseIsa(IsaName(isa), &parsed));
    EXPECT_EQ(parsed, isa);
  }
  Isa x;
  EXPECT_FALSE(ParseIsa("sse9", &x));
  CpuFeatures none;
  EXPECT_EQ(BestIsa(none), Isa::kScalar);
  CpuFeatures avx2;
  avx2.avx2 = avx2.fma = avx2.f16c = true;
  EXPECT_EQ(BestIsa(avx2), Isa::kAvx2);
  avx2.avx512f = avx2.avx512bw = avx2.avx512vl = true;
  EXPECT_EQ(BestIsa(avx2), Isa::kAvx512);
  EXPECT_LE(ActiveIsa(), BestIsa(DetectCpu()));
}

}  // namespace
}  // namespace herd
