#include "kernels/expsum.h"

#include <cmath>

#include "kernels/expsum_impl.h"

namespace herd::kernels {

float ExpRef(float y) { return expsum_impl::Exp(y); }

double ExpShiftSum(const float* x, int64_t n, float shift, float* out, Isa isa) {
  if (isa >= Isa::kAvx512) return avx512::ExpShiftSum(x, n, shift, out);
  if (isa >= Isa::kAvx2) return avx2::ExpShiftSum(x, n, shift, out);
  double sums[expsum_impl::kLanes] = {};
  expsum_impl::Tail(x, 0, n, shift, out, sums);
  return expsum_impl::Combine(sums);
}

float MaxOf(const float* x, int64_t n, Isa isa) {
  if (isa >= Isa::kAvx512) return avx512::MaxOf(x, n);
  // 8 running maxima (vectorisable), then their maximum: the same value as one running maximum.
  float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                -INFINITY, -INFINITY, -INFINITY, -INFINITY};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
  for (; i < n; ++i) m[0] = x[i] > m[0] ? x[i] : m[0];
  float best = m[0];
  for (int k = 1; k < 8; ++k) best = m[k] > best ? m[k] : best;
  return best;
}

}  // namespace herd::kernels
