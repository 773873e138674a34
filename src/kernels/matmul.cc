#include "kernels/matmul.h"

#include <algorithm>
#include <array>
#include <optional>
#include <vector>

#include "base/check.h"
#include "kernels/gemm.h"
#include "kernels/qdot.h"
#include "kernels/qgemm.h"
#include "kernels/quant.h"

namespace herd::kernels {

MatView MakeMatView(DType dtype, int64_t rows, int64_t cols, const void* data) {
  const auto row_bytes = BytesFor(dtype, static_cast<uint64_t>(cols));
  CHECK(row_bytes.has_value());
  return MatView{dtype, rows, cols, static_cast<const uint8_t*>(data), *row_bytes};
}

float Dot(const float* a, const float* b, int64_t n) {
  float s[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) s[k] += a[i + k] * b[i + k];
  }
  for (; i < n; ++i) s[i & 7] += a[i] * b[i];
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

void GetRow(const MatView& w, int64_t r, float* out) {
  CHECK(r >= 0 && r < w.rows);
  if (w.packed) return UnpackRow(*w.packed, r, out);
  DequantizeRow(w.dtype, w.row(r), w.cols, out);
}

namespace {

// Tokens per tile: a tile's activations (64 x cols bytes in Q8) stay in L2 while each weight row
// of an item is dotted with all of them from L1.
constexpr int64_t kTokenTile = 64;

// The GEMM element type of weights that kernels/gemm.h multiplies (the float formats), or none.
std::optional<GemmType> GemmTypeOf(DType t) {
  switch (t) {
    case DType::kF32:
      return GemmType::kF32;
    case DType::kBF16:
      return GemmType::kBF16;
    case DType::kF16:
      return GemmType::kF16;
    default:
      return std::nullopt;
  }
}

// The input rows in one activation format.
struct Acts {
  const uint8_t* data = nullptr;
  uint64_t row_bytes = 0;
};

}  // namespace

void MatMulShared(std::span<const MatMulOut> products, const float* x, int64_t n_tokens,
                  ThreadPool* pool, Isa isa) {
  if (products.empty() || n_tokens == 0) return;
  const int64_t cols = products[0].w.cols;
  const int threads = pool ? pool->size() : 1;

  // Block-quantised weights that inference repacked go through kernels/qgemm.h.
  auto is_packed = [](const MatMulOut& p) { return p.w.packed != nullptr; };
  if (!FloatActivationsRequested() && std::any_of(products.begin(), products.end(), is_packed)) {
    std::vector<MatMulOut> packed, rest;
    for (const MatMulOut& p : products) (is_packed(p) ? packed : rest).push_back(p);
    QGemmShared(packed, x, n_tokens, pool, isa);
    if (!rest.empty()) MatMulShared(rest, x, n_tokens, pool, isa);
    return;
  }

  // Float weights (f32, bf16, f16) go through the blocked GEMM: the forward of training, and
  // models served as they are stored. (Quantised models skip this without allocating.)
  auto is_float = [](const MatMulOut& p) { return GemmTypeOf(p.w.dtype).has_value(); };
  if (!FloatActivationsRequested() && std::any_of(products.begin(), products.end(), is_float)) {
    std::vector<MatMulOut> rest;
    for (const MatMulOut& p : products) {
      CHECK(p.w.cols == cols);
      const std::optional<GemmType> type = GemmTypeOf(p.w.dtype);
      if (!type) {
        rest.push_back(p);
        continue;
      }
      const int64_t elem = *type == GemmType::kF32 ? 4 : 2;
      const StridedMat x_rows{x, cols, 1};
      const StridedMat w_cols{p.w.data, 1, static_cast<int64_t>(p.w.row_bytes) / elem, *type};
      Gemm(n_tokens, p.w.rows, cols, x_rows, w_cols, p.out, p.w.rows, false, pool, isa);
    }
    if (!rest.empty()) MatMulShared(rest, x, n_tokens, pool, isa);
    return;
  }

  // Prepare the input once per activation format the products need.
  std::vector<DotKernel> kernels;
  std::array<Acts, kNumActFormats> acts{};
  thread_local std::array<std::vector<uint8_t>, kNumActFormats> buffers;
  for (const MatMulOut& p : products) {
    CHECK(p.w.cols == cols);
    const DotKernel k =
        FloatActivationsRequested() ? GetFloatDotKernel(p.w.dtype) : GetDotKernel(p.w.dtype, isa);
    CHECK(k.dot != nullptr);
    kernels.push_back(k);
    const auto f = static_cast<size_t>(k.act);
    if (acts[f].data) continue;
    acts[f].row_bytes = ActRowBytes(k.act, cols);
    if (k.act == ActFormat::kF32) {
      acts[f].data = reinterpret_cast<const uint8_t*>(x);
      continue;
    }
    buffers[f].resize(acts[f].row_bytes * n_tokens);
    uint8_t* dst = buffers[f].data();
    auto quantize = [&](size_t t, int) {
      k.quantize(x + t * cols, cols, dst + t * acts[f].row_bytes);
    };
    if (pool && n_tokens >= 4 * threads) {
      pool->ParallelFor(n_tokens, quantize);
    } else {
      for (int64_t t = 0; t < n_tokens; ++t) quantize(t, 0);
    }
    acts[f].data = dst;
  }

  // Work items: blocks of rows of each product, enough of them for dynamic balancing.
  std::vector<int64_t> first_item(products.size() + 1, 0);
  std::vector<int64_t> rows_per_item(products.size());
  for (size_t i = 0; i < products.size(); ++i) {
    rows_per_item[i] = std::max<int64_t>(1, products[i].w.rows / (threads * 8));
    const int64_t items = (products[i].w.rows + rows_per_item[i] - 1) / rows_per_item[i];
    first_item[i + 1] = first_item[i] + items;
  }
  auto run = [&](size_t item, int) {
    const size_t i =
        std::upper_bound(first_item.begin(), first_item.end(), static_cast<int64_t>(item)) -
        first_item.begin() - 1;
    const MatView& w = products[i].w;
    float* out = products[i].out;
    const DotKernel& k = kernels[i];
    const Acts& a = acts[static_cast<size_t>(k.act)];
    const int64_t begin = (static_cast<int64_t>(item) - first_item[i]) * rows_per_item[i];
    const int64_t end = std::min(w.rows, begin + rows_per_item[i]);
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenTile) {
      const int64_t t1 = std::min(n_tokens, t0 + kTokenTile);
      for (int64_t r = begin; r < end; ++r) {
        const uint8_t* wr = w.row(r);
        int64_t t = t0;
        if (k.dot4) {
          float four[4];
          for (; t + 4 <= t1; t += 4) {
            k.dot4(cols, wr, a.data + t * a.row_bytes, a.row_bytes, four);
            for (int c = 0; c < 4; ++c) out[(t + c) * w.rows + r] = four[c];
          }
        }
        for (; t < t1; ++t) out[t * w.rows + r] = k.dot(cols, wr, a.data + t * a.row_bytes);
      }
    }
  };
  const int64_t n_items = first_item.back();
  ParallelFor(pool, static_cast<size_t>(n_items), run);
}

void MatMul(const MatView& w, const float* x, int64_t n_tokens, float* out, ThreadPool* pool) {
  const MatMulOut p{w, out};
  MatMulShared({&p, 1}, x, n_tokens, pool, ActiveIsa());
}

}  // namespace herd::kernels
