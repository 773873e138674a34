#include "base/cpu.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace herd {

CpuFeatures DetectCpu() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) f.f16c = (ecx >> 29) & 1;  // CPUID.1:ECX.F16C[bit 29]
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512vnni = __builtin_cpu_supports("avx512vnni");
  f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
#endif
  return f;
}

Isa BestIsa(const CpuFeatures& f) {
  if (f.avx512f && f.avx512bw && f.avx512vl) return Isa::kAvx512;
  if (f.avx2 && f.fma && f.f16c) return Isa::kAvx2;
  return Isa::kScalar;
}

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

bool ParseIsa(const std::string& name, Isa* isa) {
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (name == IsaName(i)) {
      *isa = i;
      return true;
    }
  }
  return false;
}

Isa ActiveIsa() {
  static const Isa active = [] {
    Isa best = BestIsa(DetectCpu());
    if (const char* env = std::getenv("HERD_ISA"); env && *env) {
      Isa forced;
      if (!ParseIsa(env, &forced)) {
        std::fprintf(stderr, "herd: warning: HERD_ISA=%s is not scalar, avx2 or avx512; ignored\n",
                     env);
      } else {
        best = std::min(best, forced);
      }
    }
    return best;
  }();
  return active;
}

std::string DescribeCpu() {
  const CpuFeatures f = DetectCpu();
  std::string s = "features:";
  auto add = [&](bool on, const char* name) {
    if (on) s += std::string(" ") + name;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512vnni, "avx512vnni");
  add(f.avx512bf16, "avx512bf16");
  s += std::string("; best ISA ") + IsaName(BestIsa(f)) + ", active " + IsaName(ActiveIsa());
  return s;
}

}  // namespace herd
