// The scalar definition of kernels/adamw.h's update (included by adamw.cc and the per-ISA files,
// which use it for the elements after their last full vector).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/adamw.h"

namespace herd::kernels::adamw_impl {

inline void Update(const AdamWConstants& k, const float* g, float* w, float* m, float* v,
                   int64_t begin, int64_t n) {
  for (int64_t i = begin; i < n; ++i) {
    const float gi = g[i] * k.grad_scale;
    const float mi = std::fma(k.b1, m[i], k.c1 * gi);
    const float vi = std::fma(k.b2, v[i], (k.c2 * gi) * gi);
    const float d = std::fma(std::sqrt(vi), k.inv_bc2, k.eps);
    w[i] = std::fma(w[i], k.decay, -((k.step * mi) / d));
    m[i] = mi;
    v[i] = vi;
  }
}

// AddParts' definition for elements [begin, n) of g, begin a multiple of 8, into the partial sums
// s[8] (with squares).
inline void AddParts(float* g, std::span<const float* const> parts, int64_t begin, int64_t n,
                     bool squares, double* s) {
  for (const float* part : parts)
    for (int64_t i = begin; i < n; ++i) g[i] += part[i];
  if (!squares) return;
  int64_t i = begin;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) s[k] += static_cast<double>(g[i + k]) * g[i + k];
  for (; i < n; ++i) s[0] += static_cast<double>(g[i]) * g[i];
}

// GradNorm's tree (its order before it became a kernel; rms_impl::Combine8 pairs the sums
// differently, and each keeps its own so that neither's results move).
inline double Combine8(const double* s) {
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

}  // namespace herd::kernels::adamw_impl
