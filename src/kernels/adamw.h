// AdamW's per-element update in float32 (as torch.optim.AdamW updates float32 parameters), one
// fixed sequence of IEEE operations that every ISA level performs lane by lane, so each level gives
// the same bits as the scalar reference (fused multiply-adds, sqrt and division are each rounded
// once):
//   g = g grad_scale                  (gradient clipping's factor; 1: g as it is)
//   m = fma(b1, m, c1 g)              c1 = 1 - b1
//   v = fma(b2, v, (c2 g) g)          c2 = 1 - b2
//   d = fma(sqrt(v), inv_bc2, eps)    inv_bc2 = 1 / sqrt(1 - b2^t)
//   w = fma(w, decay, -((step m) / d))  step = lr / (1 - b1^t), decay = 1 - lr wd (1: no decay)
// The step's constants are computed in double by the caller (train/optimizer.h) and rounded once.
#pragma once

#include <cstdint>
#include <span>

#include "base/cpu.h"

namespace herd::kernels {

struct AdamWConstants {
  float b1 = 0, c1 = 0, b2 = 0, c2 = 0, inv_bc2 = 0, eps = 0, step = 0, decay = 1;
  float grad_scale = 1;
};

// Updates w, m, v [n] in place from the gradient g [n].
void AdamWUpdate(const AdamWConstants& k, const float* g, float* w, float* m, float* v, int64_t n,
                 Isa isa = ActiveIsa());

// Gradients accumulated in separate buffers folded into g (train/optimizer.h AddLaneGrads):
// g[i] += parts[0][i], then += parts[1][i], .... With squares, returns
// the sum of the new g[i]^2 in double: 8 partial sums, s[i mod 8] over the groups of 8 from g's
// first element and the elements after the last full group into s[0], combined as
// ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7)); a float's square is exact in double, so every
// level gives the same value. Else returns 0.
double AddParts(float* g, std::span<const float* const> parts, int64_t n, bool squares,
                Isa isa = ActiveIsa());

namespace avx2 {
void AdamWUpdate(const AdamWConstants& k, const float* g, float* w, float* m, float* v, int64_t n);
double AddParts(float* g, std::span<const float* const> parts, int64_t n, bool squares);
}  // namespace avx2
namespace avx512 {
void AdamWUpdate(const AdamWConstants& k, const float* g, float* w, float* m, float* v, int64_t n);
double AddParts(float* g, std::span<const float* const> parts, int64_t n, bool squares);
}  // namespace avx512

}  // namespace herd::kernels
