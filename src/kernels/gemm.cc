#include "kernels/gemm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/aligned.h"
#include "base/check.h"
#include "base/grow.h"

namespace herd::kernels {

void GemmReference(int64_t m, int64_t n, int64_t depth, StridedMat a, StridedMat b, float* c,
                   int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      float acc = accumulate ? c[i * ldc + j] : 0.0f;
      for (int64_t p = 0; p < depth; ++p) acc = std::fma(a.at(i, p), b.at(p, j), acc);
      c[i * ldc + j] = acc;
    }
  }
}

namespace scalar {
namespace {

constexpr int kMr = 4, kNr = 4;

void Micro(int rows, int64_t kc, const float* ap, int64_t lda, const float* bp, float* c,
           int64_t ldc, bool load) {
  float acc[kMr][kNr];
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < kNr; ++j) acc[i][j] = load ? c[i * ldc + j] : 0.0f;
  const int64_t row_step = lda > 0 ? lda : 1, k_step = lda > 0 ? 1 : rows;
  for (int64_t p = 0; p < kc; ++p, bp += kNr)
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < kNr; ++j)
        acc[i][j] = std::fma(ap[i * row_step + p * k_step], bp[j], acc[i][j]);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < kNr; ++j) c[i * ldc + j] = acc[i][j];
}

}  // namespace

GemmMicroKernel GetGemmKernel() { return {kMr, kNr, Micro}; }

}  // namespace scalar

namespace {

// Depth of a packed block: a kc x nr panel of B (32 KiB at AVX-512) stays in L1 while the
// micro-kernel walks the A panels of the block, which stay in L2.
constexpr int64_t kKc = 256;

// dst[p * rows + i] = a(i0 + i, k0 + p) for p < kc, i < rows.
void PackA(const StridedMat& a, int64_t i0, int rows, int64_t k0, int64_t kc, float* dst) {
  if (a.col_stride == 1) {  // rows of A are contiguous: read along them
    for (int i = 0; i < rows; ++i) {
      const float* src = a.f32() + (i0 + i) * a.row_stride + k0;
      for (int64_t p = 0; p < kc; ++p) dst[p * rows + i] = src[p];
    }
    return;
  }
  if (a.row_stride == 1) {  // columns of A are contiguous (dy^T of a weight gradient): copies
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = a.f32() + (k0 + p) * a.col_stride + i0;
      for (int i = 0; i < rows; ++i) dst[p * rows + i] = src[i];  // short: no memcpy call
    }
    return;
  }
  for (int64_t p = 0; p < kc; ++p)
    for (int i = 0; i < rows; ++i) dst[p * rows + i] = a.at(i0 + i, k0 + p);
}

// dst[p * nr + j] = b(k0 + p, j0 + j) for p < kc, j < cols; 0 for cols <= j < nr.
void PackB(const StridedMat& b, int64_t k0, int64_t kc, int64_t j0, int cols, int nr, float* dst) {
  if (cols < nr) {
    for (int64_t p = 0; p < kc; ++p) std::fill_n(dst + p * nr + cols, nr - cols, 0.0f);
  }
  if (b.type != GemmType::kF32) {
    for (int64_t p = 0; p < kc; ++p)
      for (int j = 0; j < cols; ++j) dst[p * nr + j] = b.at(k0 + p, j0 + j);
    return;
  }
  if (b.row_stride == 1) {  // columns of B (rows of a transposed weight) are contiguous
    for (int j = 0; j < cols; ++j) {
      const float* src = b.f32() + (j0 + j) * b.col_stride + k0;
      for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = src[p];
    }
    return;
  }
  if (b.col_stride == 1) {  // rows of B are contiguous: copies
    for (int64_t p = 0; p < kc; ++p) {
      const float* src = b.f32() + (k0 + p) * b.row_stride + j0;
      for (int j = 0; j < cols; ++j) dst[p * nr + j] = src[j];  // short: no memcpy call
    }
    return;
  }
  for (int64_t p = 0; p < kc; ++p)
    for (int j = 0; j < cols; ++j) dst[p * nr + j] = b.at(k0 + p, j0 + j);
}

}  // namespace

GemmMicroKernel GemmKernelFor(Isa isa) {
  if (isa >= Isa::kAvx512) return avx512::GetGemmKernel();
  if (isa >= Isa::kAvx2) return avx2::GetGemmKernel();
  return scalar::GetGemmKernel();
}

void GemmPackA(const GemmMicroKernel& kernel, const StridedMat& a, int64_t i0, int rows, int64_t k0,
               int64_t kc, float* dst) {
  if (kernel.pack_runs && a.row_stride == 1 && rows <= 32) {
    kernel.pack_runs(a.f32() + k0 * a.col_stride + i0, a.col_stride, kc, rows, rows, dst);
  } else if (kernel.pack_rows_a && a.col_stride == 1 && rows <= 16) {
    kernel.pack_rows_a(a.f32() + i0 * a.row_stride + k0, a.row_stride, kc, rows, dst);
  } else {
    PackA(a, i0, rows, k0, kc, dst);
  }
}

void GemmPackB(const GemmMicroKernel& kernel, const StridedMat& b, int64_t k0, int64_t kc,
               int64_t j0, int cols, float* dst) {
  const int nr = kernel.nr;
  if (kernel.pack_transposed_b && b.row_stride == 1) {
    kernel.pack_transposed_b(b.ptr(j0 * b.col_stride + k0), b.type, b.col_stride, kc, cols, dst);
  } else if (kernel.pack_runs && b.type == GemmType::kF32 && b.col_stride == 1 && nr <= 32) {
    kernel.pack_runs(b.f32() + k0 * b.row_stride + j0, b.row_stride, kc, cols, nr, dst);
  } else {
    PackB(b, k0, kc, j0, cols, nr, dst);
  }
}

void GemmTile(const GemmMicroKernel& kernel, int rows, int cols, int64_t kc, const float* ap,
              int64_t lda, const float* bp, float* c, int64_t ldc, bool load) {
  const int nr = kernel.nr;
  if (cols == nr) return kernel.fn(rows, kc, ap, lda, bp, c, ldc, load);
  // A partial tile at the right edge: through a full-width buffer.
  float edge[32 * 32];
  CHECK(kernel.mr * nr <= 32 * 32);
  for (int r = 0; r < rows; ++r) {
    if (load) std::copy_n(c + r * ldc, cols, &edge[r * nr]);
  }
  kernel.fn(rows, kc, ap, lda, bp, edge, nr, load);
  for (int r = 0; r < rows; ++r) std::copy_n(&edge[r * nr], cols, c + r * ldc);
}

void Gemm(int64_t m, int64_t n, int64_t depth, StridedMat a, StridedMat b, float* c, int64_t ldc,
          bool accumulate, ThreadPool* pool, Isa isa) {
  CHECK(m >= 0 && n >= 0 && depth >= 0 && ldc >= n && a.type == GemmType::kF32);
  if (m == 0 || n == 0) return;
  if (depth == 0) {
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i) std::fill_n(c + i * ldc, n, 0.0f);
    return;
  }
  const GemmMicroKernel kernel = GemmKernelFor(isa);
  const int mr = kernel.mr, nr = kernel.nr;
  if (kernel.gemv_transposed_b && m <= kernel.gemv_max_rows && a.col_stride == 1 &&
      b.row_stride == 1) {
    // Decode: 16 columns per call, 8 calls per work item.
    constexpr int64_t kCols = 16, kItem = 8 * kCols;
    const int64_t items = (n + kItem - 1) / kItem;
    auto run = [&](size_t item, int) {
      const int64_t j0 = static_cast<int64_t>(item) * kItem, j1 = std::min(n, j0 + kItem);
      for (int64_t j = j0; j < j1; j += kCols) {
        kernel.gemv_transposed_b(static_cast<int>(m), a.f32(), a.row_stride,
                                 b.ptr(j * b.col_stride), b.type, b.col_stride, depth,
                                 static_cast<int>(std::min(kCols, n - j)), c + j, ldc, accumulate);
      }
    };
    ParallelFor(pool, static_cast<size_t>(items), run);
    return;
  }
  // A tile of C is mc x nc; its A block (mc x kc, at most ~0.5 MiB: L2) and B block (kc x nc) are
  // packed per k block. Each tile packs its own blocks, so B is packed once per row of tiles and A
  // once per column: tiles are as tall as L2 allows, and only split further when there are too
  // few tiles to keep every thread busy (the output projection's dx: m tokens x n = dim columns).
  const int threads = pool ? pool->size() : 1;
  // Few rows (decode: m = 1): narrower tiles, so that every thread gets several.
  const int64_t m_panels = (m + mr - 1) / mr, want_tiles = 4 * threads;
  int64_t nc = int64_t{nr} * 16;
  if (m_panels * ((n + nc - 1) / nc) < want_tiles) {
    const int64_t per_tile =
        (n + (want_tiles + m_panels - 1) / m_panels - 1) / ((want_tiles + m_panels - 1) / m_panels);
    nc = std::clamp<int64_t>((per_tile + nr - 1) / nr * nr, nr, nc);
  }
  int64_t n_tiles = (n + nc - 1) / nc;
  const int64_t max_mc = int64_t{mr} * 40;
  // Several threads: at least two tiles each. One thread (a training lane): no more tiles than L2
  // asks for, since each row of tiles packs B again.
  const int64_t min_tiles = threads > 1 ? 2 * threads : 1;
  int64_t m_tiles = std::min(
      (m + mr - 1) / mr, std::max((m + max_mc - 1) / max_mc, (min_tiles + n_tiles - 1) / n_tiles));
  // Few tiles: a count that the threads share evenly (5 tiles on 2 threads take as long as 6).
  if (m_tiles * n_tiles < 8 * threads) {
    while (m_tiles < m_panels && (m_tiles * n_tiles) % threads != 0) ++m_tiles;
  }

  // A row-major A is read in place by the micro-kernel (its rows are streams along k); packing
  // it would transpose it element by element (GemmReadsRowsInPlace).
  const bool a_in_place = a.col_stride == 1 && GemmReadsRowsInPlace(a.row_stride);
  const int64_t lda = a_in_place ? a.row_stride : 0;

  // Each tile packs its own A block (unless A is read in place) and B block, so a split of m
  // packs all of B once per row of tiles and a split of n all of A once per column. A weight
  // gradient (dy^T x: A's columns contiguous, m and n the weight's shape, depth the tokens) with
  // few tiles may pack less, and share the work more evenly, split along n: the plan with the
  // smaller estimate of the busiest thread's cycles (FMAs at 2 x 16 lanes per cycle, ~1 cycle per
  // packed float).
  if (a.row_stride == 1 && a.col_stride != 1 && threads > 1 && m_tiles * n_tiles <= 2 * threads) {
    auto busiest = [&](int64_t mt, int64_t nt) {
      const int64_t rows = ((m + mt - 1) / mt + mr - 1) / mr * mr;
      const int64_t cols = ((n + nt - 1) / nt + nr - 1) / nr * nr;
      const int64_t per_thread = (mt * nt + threads - 1) / threads;
      return per_thread * (rows * cols * depth / 32 + (rows + cols) * depth);
    };
    const int64_t n_panels = (n + nr - 1) / nr;
    const int64_t mt = (m + max_mc - 1) / max_mc;
    int64_t nt = (threads + mt - 1) / mt;
    while (nt < n_panels && (mt * nt) % threads != 0) ++nt;
    if (nt <= n_panels && (n + nt - 1) / nt <= int64_t{nr} * 16 &&
        busiest(mt, nt) < busiest(m_tiles, n_tiles)) {
      m_tiles = mt, n_tiles = nt;
      nc = ((n + nt - 1) / nt + nr - 1) / nr * nr;
    }
  }
  const int64_t mc = ((m + m_tiles - 1) / m_tiles + mr - 1) / mr * mr;

  auto run_tile = [&](size_t tile, int) {
    const int64_t i0 = static_cast<int64_t>(tile) / n_tiles * mc;
    const int64_t j0 = static_cast<int64_t>(tile) % n_tiles * nc;
    const int64_t i1 = std::min(m, i0 + mc), j1 = std::min(n, j0 + nc);
    thread_local AlignedFloats a_pack, b_pack;
    Grow(a_pack, mc * kKc), Grow(b_pack, nc * kKc);
    for (int64_t k0 = 0; k0 < depth; k0 += kKc) {
      const int64_t kc = std::min(kKc, depth - k0);
      const bool load = accumulate || k0 > 0;
      if (!a_in_place) {
        for (int64_t i = i0; i < i1; i += mr) {
          const int rows = static_cast<int>(std::min<int64_t>(mr, i1 - i));
          GemmPackA(kernel, a, i, rows, k0, kc, &a_pack[(i - i0) * kc]);
        }
      }
      // Each B panel is packed right before the micro-kernels that use it (it is then in L1).
      for (int64_t j = j0; j < j1; j += nr) {
        const int cols = static_cast<int>(std::min<int64_t>(nr, j1 - j));
        float* bp = &b_pack[(j - j0) * kc];
        GemmPackB(kernel, b, k0, kc, j, cols, bp);
        for (int64_t i = i0; i < i1; i += mr) {
          const int rows = static_cast<int>(std::min<int64_t>(mr, i1 - i));
          const float* ap = a_in_place ? a.f32() + i * a.row_stride + k0 : &a_pack[(i - i0) * kc];
          GemmTile(kernel, rows, cols, kc, ap, lda, bp, c + i * ldc + j, ldc, load);
        }
      }
    }
  };
  const int64_t tiles = ((m + mc - 1) / mc) * n_tiles;
  ParallelFor(pool, static_cast<size_t>(tiles), run_tile);
}

}  // namespace herd::kernels
