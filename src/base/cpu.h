// CPU features and the instruction-set level kernels dispatch on at run time. The shipped binary is
// built for baseline x86-64; SIMD kernels are compiled per ISA and chosen from CPUID here.
// HERD_ISA=scalar|avx2| avx512 forces a lower level (never a higher one than the CPU has), so tests
// cover every path.
#pragma once

#include <string>

namespace herd {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx512bf16 = false;
};

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

CpuFeatures DetectCpu();
// Highest level the CPU supports: AVX-512 needs F+BW+VL, AVX2 needs AVX2+FMA+F16C.
Isa BestIsa(const CpuFeatures& f);
// BestIsa, lowered by $HERD_ISA if set. Computed once.
Isa ActiveIsa();
const char* IsaName(Isa isa);
// Parses "scalar", "avx2", "avx512"; false if unknown.
bool ParseIsa(const std::string& name, Isa* isa);
std::string DescribeCpu();

}  // namespace herd
