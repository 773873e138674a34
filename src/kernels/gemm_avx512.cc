// AVX-512 F micro-kernel for kernels/gemm.h: a tile of up to 12 rows x 32 columns of C in 24 zmm
// accumulators; per k step two loads of the B panel, a broadcast of each row's A value and 24 FMAs.
#include <algorithm>
#include <utility>

#include "kernels/gemm.h"
#include "kernels/immintrin_avx512.h"
#include "kernels/transpose_avx512.h"

namespace herd::kernels::avx512 {
namespace {

constexpr int kMr = 12, kNr = 32;

// A(i, p) at ap[p * R + i] (a packed panel) or, with lda > 0, at ap[i * lda + p] (rows of A read
// in place).
template <int R, bool kInPlace>
void Micro(int64_t kc, const float* ap, int64_t lda, const float* bp, float* c, int64_t ldc,
           bool load) {
  __m512 acc[R][2];
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) {
    acc[i][0] = load ? _mm512_loadu_ps(c + i * ldc) : _mm512_setzero_ps();
    acc[i][1] = load ? _mm512_loadu_ps(c + i * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < kc; ++p, bp += kNr) {
    const __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      const __m512 a = _mm512_set1_ps(kInPlace ? ap[i * lda + p] : ap[p * R + i]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) {
    _mm512_storeu_ps(c + i * ldc, acc[i][0]);
    _mm512_storeu_ps(c + i * ldc + 16, acc[i][1]);
  }
}

template <int... R>
void Dispatch(int rows, int64_t kc, const float* ap, int64_t lda, const float* bp, float* c,
              int64_t ldc, bool load, std::integer_sequence<int, R...>) {
  using Fn = void (*)(int64_t, const float*, int64_t, const float*, float*, int64_t, bool);
  static constexpr Fn kPacked[] = {Micro<R + 1, false>...};
  static constexpr Fn kInPlace[] = {Micro<R + 1, true>...};
  (lda > 0 ? kInPlace : kPacked)[rows - 1](kc, ap, lda, bp, c, ldc, load);
}

void MicroAny(int rows, int64_t kc, const float* ap, int64_t lda, const float* bp, float* c,
              int64_t ldc, bool load) {
  Dispatch(rows, kc, ap, lda, bp, c, ldc, load, std::make_integer_sequence<int, kMr>{});
}

// 16 (masked: the first n) consecutive elements of type T from p, as floats (exact).
template <GemmType T>
inline __m512 Load16(const void* p, __mmask16 mask) {
  if constexpr (T == GemmType::kF32) {
    return _mm512_maskz_loadu_ps(mask, p);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, p);
    if constexpr (T == GemmType::kF16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

template <GemmType T>
const void* Advance(const void* p, int64_t elements) {
  return static_cast<const uint8_t*>(p) + elements * (T == GemmType::kF32 ? 4 : 2);
}

// dst[p * 32 + j] = b[j * ldb + p] for p < kc, j < cols (0 for cols <= j < 32): a panel of a
// transposed row-major matrix (the forward's w^T), 16 x 16 blocks at a time.
template <GemmType T>
void PackTransposed(const void* b, int64_t ldb, int64_t kc, int cols, float* dst) {
  for (int64_t p0 = 0; p0 < kc; p0 += 16) {
    const int n = static_cast<int>(std::min<int64_t>(16, kc - p0));
    const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1);
    for (int j0 = 0; j0 < kNr; j0 += 16) {
      __m512 r[16];
      for (int j = 0; j < 16; ++j)
        r[j] = j0 + j < cols ? Load16<T>(Advance<T>(b, (j0 + j) * ldb + p0), mask)
                             : _mm512_setzero_ps();
      Transpose16(r);
      for (int q = 0; q < n; ++q) _mm512_storeu_ps(dst + (p0 + q) * kNr + j0, r[q]);
    }
  }
}

void PackTransposedAny(const void* b, GemmType type, int64_t ldb, int64_t kc, int cols,
                       float* dst) {
  switch (type) {
    case GemmType::kBF16:
      return PackTransposed<GemmType::kBF16>(b, ldb, kc, cols, dst);
    case GemmType::kF16:
      return PackTransposed<GemmType::kF16>(b, ldb, kc, cols, dst);
    default:
      return PackTransposed<GemmType::kF32>(b, ldb, kc, cols, dst);
  }
}

// gemm.h's GemmPackRunsFn: one or two masked 16-float moves per k step (no loop over a run).
void PackRuns(const float* src, int64_t ld, int64_t kc, int n, int width, float* dst) {
  const auto mask = [](int count) {
    return static_cast<__mmask16>(count >= 16 ? 0xffff : count <= 0 ? 0 : (1u << count) - 1);
  };
  const __mmask16 load0 = mask(n), load1 = mask(n - 16);
  const __mmask16 store0 = mask(width), store1 = mask(width - 16);
  for (int64_t p = 0; p < kc; ++p, src += ld, dst += width) {
    _mm512_mask_storeu_ps(dst, store0, _mm512_maskz_loadu_ps(load0, src));
    if (width > 16) _mm512_mask_storeu_ps(dst + 16, store1, _mm512_maskz_loadu_ps(load1, src + 16));
  }
}

// gemm.h's GemmPackRowsFn: 16 x 16 blocks (rows < 16 padded with zeros) transposed in registers,
// each k step's `rows` values stored under a mask.
void PackRows(const float* a, int64_t lda, int64_t kc, int rows, float* dst) {
  const __mmask16 row_mask = static_cast<__mmask16>((1u << rows) - 1);
  for (int64_t p0 = 0; p0 < kc; p0 += 16) {
    const int n = static_cast<int>(std::min<int64_t>(16, kc - p0));
    const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1);
    __m512 r[16];
    for (int i = 0; i < 16; ++i)
      r[i] = i < rows ? _mm512_maskz_loadu_ps(mask, a + i * lda + p0) : _mm512_setzero_ps();
    Transpose16(r);
    for (int q = 0; q < n; ++q) _mm512_mask_storeu_ps(dst + (p0 + q) * rows, row_mask, r[q]);
  }
}

// c[i * ldc + j] = (load ? c[i * ldc + j] : 0) + sum_p a[i * lda + p] * w[j * ldw + p] for
// i < R, j < cols <= 16, one FMA chain over p = 0, 1, ... per element: 16 rows of w are loaded
// 16 elements at a time, transposed in registers and multiplied without packing (decode: w is
// streamed from memory once, and nothing is stored on the way).
template <int R, GemmType T>
void GemvT(const float* a, int64_t lda, const void* w, int64_t ldw, int64_t k, int cols, float* c,
           int64_t ldc, bool load) {
  const __mmask16 cmask = static_cast<__mmask16>((1u << cols) - 1);
  __m512 acc[R];
  for (int i = 0; i < R; ++i)
    acc[i] = load ? _mm512_maskz_loadu_ps(cmask, c + i * ldc) : _mm512_setzero_ps();
  for (int64_t p0 = 0; p0 < k; p0 += 16) {
    const int n = static_cast<int>(std::min<int64_t>(16, k - p0));
    const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1);
    __m512 r[16];
    for (int j = 0; j < 16; ++j)
      r[j] = j < cols ? Load16<T>(Advance<T>(w, j * ldw + p0), mask) : _mm512_setzero_ps();
    Transpose16(r);
    for (int q = 0; q < n; ++q)
      for (int i = 0; i < R; ++i)
        acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i * lda + p0 + q]), r[q], acc[i]);
  }
  for (int i = 0; i < R; ++i) _mm512_mask_storeu_ps(c + i * ldc, cmask, acc[i]);
}

template <GemmType T>
void GemvTRows(int rows, const float* a, int64_t lda, const void* w, int64_t ldw, int64_t k,
               int cols, float* c, int64_t ldc, bool load) {
  switch (rows) {
    case 1:
      return GemvT<1, T>(a, lda, w, ldw, k, cols, c, ldc, load);
    case 2:
      return GemvT<2, T>(a, lda, w, ldw, k, cols, c, ldc, load);
    case 3:
      return GemvT<3, T>(a, lda, w, ldw, k, cols, c, ldc, load);
    default:
      return GemvT<4, T>(a, lda, w, ldw, k, cols, c, ldc, load);
  }
}

void GemvTAny(int rows, const float* a, int64_t lda, const void* w, GemmType type, int64_t ldw,
              int64_t k, int cols, float* c, int64_t ldc, bool load) {
  switch (type) {
    case GemmType::kBF16:
      return GemvTRows<GemmType::kBF16>(rows, a, lda, w, ldw, k, cols, c, ldc, load);
    case GemmType::kF16:
      return GemvTRows<GemmType::kF16>(rows, a, lda, w, ldw, k, cols, c, ldc, load);
    default:
      return GemvTRows<GemmType::kF32>(rows, a, lda, w, ldw, k, cols, c, ldc, load);
  }
}

}  // namespace

GemmMicroKernel GetGemmKernel() {
  return {kMr, kNr, MicroAny, PackTransposedAny, PackRuns, PackRows, GemvTAny, /*gemv_max_rows=*/4};
}

}  // namespace herd::kernels::avx512
