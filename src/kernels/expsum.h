// The exponentials of a row and their sum, the inner loop of softmax cross-entropy over the
// vocabulary (training's loss: 128,256 exponentials per token). One exp definition shared by every
// ISA level, written as a fixed sequence of IEEE operations (Cephes' expf: n = round(y log2 e),
// r = y - n ln 2 in two FMAs, a degree-7 polynomial by FMAs, times 2^n), so each level computes
// the same bits as the scalar reference; the sum is in double over 16 partial sums (element i into
// sum i mod 16) combined by a fixed tree. Relative error of exp: about 1 ulp of float.
#pragma once

#include <cstdint>

#include "base/cpu.h"

namespace herd::kernels {

// exp(y) as defined above: 0 below -87.3 (where float's normal range ends), exp(88) above 88
// (softmax passes y <= 0), NaN for NaN.
float ExpRef(float y);

// out[i] = ExpRef(x[i] - shift) for i < n (out may be null, or x itself); returns the sum of those
// values as described above.
double ExpShiftSum(const float* x, int64_t n, float shift, float* out, Isa isa = ActiveIsa());

// The largest element (NaNs skipped; -inf for n = 0 or all NaN): exact, so the same value at
// every ISA level.
float MaxOf(const float* x, int64_t n, Isa isa = ActiveIsa());

// Per-level kernels; SwiGLU and SwiGLUBackward (kernels/ops.h, kernels/backward.h) live here
// because they are built on this exp: the levels compute their scalar definitions' bits.
namespace avx2 {
double ExpShiftSum(const float* x, int64_t n, float shift, float* out);
void SwiGLU(const float* gate, const float* up, int64_t n, float* out);
void SwiGLUBackward(const float* gate, const float* up, const float* dy, int64_t n, float* dgate,
                    float* dup);
}  // namespace avx2
namespace avx512 {
double ExpShiftSum(const float* x, int64_t n, float shift, float* out);
float MaxOf(const float* x, int64_t n);
void SwiGLU(const float* gate, const float* up, int64_t n, float* out);
void SwiGLUBackward(const float* gate, const float* up, const float* dy, int64_t n, float* dgate,
                    float* dup);
}  // namespace avx512

}  // namespace herd::kernels
