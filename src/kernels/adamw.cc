#include "kernels/adamw.h"

#include "kernels/adamw_impl.h"

namespace herd::kernels {

void AdamWUpdate(const AdamWConstants& k, const float* g, float* w, float* m, float* v, int64_t n,
                 Isa isa) {
  if (isa >= Isa::kAvx512) return avx512::AdamWUpdate(k, g, w, m, v, n);
  if (isa >= Isa::kAvx2) return avx2::AdamWUpdate(k, g, w, m, v, n);
  adamw_impl::Update(k, g, w, m, v, 0, n);
}

double AddParts(float* g, std::span<const float* const> parts, int64_t n, bool squares, Isa isa) {
  if (isa >= Isa::kAvx512) return avx512::AddParts(g, parts, n, squares);
  if (isa >= Isa::kAvx2) return avx2::AddParts(g, parts, n, squares);
  double s[8] = {};
  adamw_impl::AddParts(g, parts, 0, n, squares, s);
  return squares ? adamw_impl::Combine8(s) : 0.0;
}

}  // namespace herd::kernels
