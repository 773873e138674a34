// The scalar definition of kernels/adamw.h's update (included by adamw.cc and the per-ISA files,
// which use it for the elements after their last full vector).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/adamw.h"

namespace herd::kernels::adamw_impl {

inline void Update(const AdamWConstants& k, float* g, float* w, float* m, float* v, int64_t begin,
                   int64_t n) {
  for (int64_t i = begin; i < n; ++i) {
    const float gi = g[i] * k.grad_scale;
    if (k.zero_grad) g[i] = 0.0f;
    const float mi = std::fma(k.b1, m[i], k.c1 * gi);
    const float vi = std::fma(k.b2, v[i], (k.c2 * gi) * gi);
    const float d = std::fma(std::sqrt(vi), k.inv_bc2, k.eps);
    w[i] = std::fma(w[i], k.decay, -((k.step * mi) / d));
    m[i] = mi;
    v[i] = vi;
  }
}

}  // namespace herd::kernels::adamw_impl
