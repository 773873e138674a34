// Element-wise and per-row ops of the Llama forward pass, float32 in and out.
#pragma once

#include <cstdint>

#include "base/cpu.h"

namespace herd::kernels {

// out = x / sqrt(mean(x^2) + eps) * weight (Zhang & Sennrich's RMSNorm); the squares are summed
// in double, element j into partial sum j mod 8, combined by a fixed tree (rms_impl.h), so every
// ISA level gives the same bits. out may alias x.
// Returns the scale r the row was multiplied by (the training backward needs it).
float RMSNorm(const float* x, const float* weight, int64_t n, float eps, float* out,
              Isa isa = ActiveIsa());
namespace avx512 {
float RMSNorm(const float* x, const float* weight, int64_t n, float eps, float* out);
}  // namespace avx512

// Rotary embedding on interleaved pairs (Meta's layout: (x[2i], x[2i+1]) is rotated by angle
// pos * inv_freq[i]) for n_heads heads of head_dim floats; cos/sin: [head_dim / 2] for this
// position.
void RopeInterleaved(float* x, int n_heads, int head_dim, const float* cos, const float* sin);

// out[i] = silu(gate[i]) * up[i], silu(z) = z / (1 + e^-z) (e^-z: kernels/expsum.h ExpRef); out
// may be gate (in place: the form without out). The same bits at every ISA level.
void SwiGLU(const float* gate, const float* up, int64_t n, float* out, Isa isa = ActiveIsa());
inline void SwiGLU(float* gate, const float* up, int64_t n) { SwiGLU(gate, up, n, gate); }

// In place: x = exp(x - max) / sum. Entries of -inf get probability 0.
void Softmax(float* x, int64_t n);

// x += y.
void Add(float* x, const float* y, int64_t n);
// out = x + y (out may be x).
void Add(const float* x, const float* y, int64_t n, float* out);

}  // namespace herd::kernels
