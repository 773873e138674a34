// Float32 matrix product C = A B (+ C) for the products of training (the forward's x w^T and the
// backward's dy w and dy^T x) and for f32 / bf16 / f16 weights in MatMul (B may be 16-bit). Blocked
// as in BLIS / GotoBLAS: panels of A (mr rows) and B (nr columns) are packed k-major into
// contiguous buffers that stay in cache, and a register-tiled micro-kernel (AVX-512: 12 x 32, AVX2:
// 6 x 16, scalar: 4 x 4) accumulates an mr x nr tile of C with one fused multiply-add per element
// and k step.
//
// Every element of C is one chain of fused multiply-adds over k in increasing order, starting from
// 0 (or from C's old value when accumulating):  c = fma(A(i, k), B(k, j), c)  for k = 0, 1, ...
// So the result does not depend on the ISA, the blocking, the thread count or on m: GemmReference
// (plain loops with std::fma) computes the same bits, a row of A gives the same row of C whether it
// is multiplied alone or with others, and gradients are reproducible across thread counts.
#pragma once

#include <cstdint>

#include "base/cpu.h"
#include "base/thread_pool.h"
#include "kernels/convert.h"

namespace herd::kernels {

// The element type of an operand: float32, or (B only: weights as stored) bf16 / f16, converted
// exactly to float32 when packed.
enum class GemmType : uint8_t { kF32, kBF16, kF16 };

// A matrix read through strides: element (i, j) at data[i * row_stride + j * col_stride] (in
// elements of `type`). A row-major [rows, cols] array is {p, cols, 1}; its transpose {p, 1, cols}.
struct StridedMat {
  const void* data = nullptr;
  int64_t row_stride = 0, col_stride = 1;
  GemmType type = GemmType::kF32;

  const float* f32() const { return static_cast<const float*>(data); }
  // The element at flat index `index` (in elements) as float32.
  float load(int64_t index) const {
    const auto* h = static_cast<const uint16_t*>(data);
    switch (type) {
      case GemmType::kBF16:
        return BF16ToF32(h[index]);
      case GemmType::kF16:
        return F16ToF32(h[index]);
      default:
        return f32()[index];
    }
  }
  float at(int64_t i, int64_t j) const { return load(i * row_stride + j * col_stride); }
  // The address of flat index `index`.
  const void* ptr(int64_t index) const {
    return static_cast<const uint8_t*>(data) + index * (type == GemmType::kF32 ? 4 : 2);
  }
};

// c[i * ldc + j] = (accumulate ? c[i * ldc + j] : 0) + sum_k a(i, k) b(k, j), for i < m, j < n,
// k < depth, as described above. c must not overlap a or b; a must be float32. Tiles of C are
// split over the pool's threads (pool may be null). Uses the micro-kernel of level isa (or the
// best lower one).
void Gemm(int64_t m, int64_t n, int64_t depth, StridedMat a, StridedMat b, float* c, int64_t ldc,
          bool accumulate, ThreadPool* pool, Isa isa = ActiveIsa());

// The definition: three loops and std::fma (tests compare every level with it).
void GemmReference(int64_t m, int64_t n, int64_t depth, StridedMat a, StridedMat b, float* c,
                   int64_t ldc, bool accumulate);

// A micro-kernel: for i < rows (1 <= rows <= mr), j < nr:
//   acc = load ? c[i * ldc + j] : 0;  acc = fma(A(i, p), bp[p * nr + j], acc) for p < kc;
//   c[i * ldc + j] = acc.
// A(i, p): ap[p * rows + i] (a packed panel, k-major) when lda is 0, else ap[i * lda + p] (rows
// of a row-major A read in place: packing them would be a transpose); bp: a packed panel of B
// (kc x nr, k-major).
using GemmMicroFn = void (*)(int rows, int64_t kc, const float* ap, int64_t lda, const float* bp,
                             float* c, int64_t ldc, bool load);
// Optional: packs a B panel that is a transposed row-major matrix of `type`, B(p, j) =
// b[j * ldb + p]: dst[p * nr + j] for p < kc, j < cols, zeros for cols <= j < nr (with SIMD
// transposes; the generic packer stores one element at a time).
using GemmPackFn = void (*)(const void* b, GemmType type, int64_t ldb, int64_t kc, int cols,
                            float* dst);
// Optional: a whole product for a few rows of a row-major A (1 <= rows <= gemv_max_rows) and
// up to 16 columns of a transposed row-major B of `type` (decode's x w^T), without packing:
// c[i * ldc + j] = (load ? c[i * ldc + j] : 0) + sum_p a[i * lda + p] * b[j * ldb + p] for
// j < cols, each element one FMA chain over p in order.
using GemvFn = void (*)(int rows, const float* a, int64_t lda, const void* b, GemmType type,
                        int64_t ldb, int64_t depth, int cols, float* c, int64_t ldc, bool load);
// Optional: packs a panel whose k-steps are contiguous runs of float32: dst[p * width + i] =
// src[p * ld + i] for p < kc, i < n, zeros for n <= i < width (width <= 32). A panel of A whose
// columns are contiguous (dy^T: n = width = rows) or of B whose rows are (n = cols, width = nr).
using GemmPackRunsFn = void (*)(const float* src, int64_t ld, int64_t kc, int n, int width,
                                float* dst);
// Optional: packs a panel of rows <= 16 rows of a row-major float32 A (rows lda apart):
// dst[p * rows + i] = a[i * lda + p] for p < kc, i < rows (a transpose: SIMD 16 x 16 blocks).
using GemmPackRowsFn = void (*)(const float* a, int64_t lda, int64_t kc, int rows, float* dst);
struct GemmMicroKernel {
  int mr = 0, nr = 0;
  GemmMicroFn fn = nullptr;
  GemmPackFn pack_transposed_b = nullptr;
  GemmPackRunsFn pack_runs = nullptr;
  GemmPackRowsFn pack_rows_a = nullptr;
  GemvFn gemv_transposed_b = nullptr;
  int gemv_max_rows = 0;
};

// The pieces Gemm is made of, for callers that drive the tiles themselves (training attention
// skips the tiles a causal mask zeroes). The same packing and micro-kernels, so a product made
// of them computes Gemm's bits (each element one FMA chain over k in order).
//
// The micro-kernels of level isa (or the best lower one).
GemmMicroKernel GemmKernelFor(Isa isa);
// Packs rows [i0, i0 + rows) x columns [k0, k0 + kc) of a into a k-major panel:
// dst[p * rows + i] = a(i0 + i, k0 + p).
void GemmPackA(const GemmMicroKernel& kernel, const StridedMat& a, int64_t i0, int rows, int64_t k0,
               int64_t kc, float* dst);
// Packs rows [k0, k0 + kc) x columns [j0, j0 + cols) of b (cols <= nr) into a k-major panel:
// dst[p * nr + j] = b(k0 + p, j0 + j), zeros for cols <= j < nr.
void GemmPackB(const GemmMicroKernel& kernel, const StridedMat& b, int64_t k0, int64_t kc,
               int64_t j0, int cols, float* dst);
// Whether rows of A lda floats apart are read in place by the micro-kernel (lda > 0) rather than
// packed: not when they are a multiple of 4 KiB apart (they would evict each other from L1).
inline bool GemmReadsRowsInPlace(int64_t lda) { return lda > 0 && lda % 1024 != 0; }
// A tile of C: rows x cols (rows <= mr, cols <= nr) at c (leading dimension ldc) =
// (load ? C : 0) + A B over kc steps, A a packed panel (lda 0) or rows read in place (lda > 0), B
// a packed panel. Partial-width tiles go through a buffer, so C's columns beyond cols are not
// touched.
void GemmTile(const GemmMicroKernel& kernel, int rows, int cols, int64_t kc, const float* ap,
              int64_t lda, const float* bp, float* c, int64_t ldc, bool load);

// Per-level micro-kernels (gemm.cc, gemm_avx2.cc, gemm_avx512.cc).
namespace scalar {
GemmMicroKernel GetGemmKernel();
}
namespace avx2 {
GemmMicroKernel GetGemmKernel();
}
namespace avx512 {
GemmMicroKernel GetGemmKernel();
}

}  // namespace herd::kernels
