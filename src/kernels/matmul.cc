#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "base/check.h"
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
  DequantizeRow(w.dtype, w.row(r), w.cols, out);
}

void MatMul(const MatView& w, const float* x, int64_t n_tokens, float* out, ThreadPool* pool) {
  CHECK(CanDequantize(w.dtype));
  // Enough items per thread for dynamic balancing, few enough to keep the hand-out cheap.
  const int threads = pool ? pool->size() : 1;
  const int64_t rows_per_item = std::max<int64_t>(1, w.rows / (threads * 16));
  const int64_t n_items = (w.rows + rows_per_item - 1) / rows_per_item;
  auto run = [&](size_t item, int) {
    thread_local std::vector<float> row;
    const int64_t begin = static_cast<int64_t>(item) * rows_per_item;
    const int64_t end = std::min(w.rows, begin + rows_per_item);
    for (int64_t r = begin; r < end; ++r) {
      const float* wr;
      if (w.dtype == DType::kF32) {
        wr = reinterpret_cast<const float*>(w.row(r));
      } else {
        row.resize(w.cols);
        DequantizeRow(w.dtype, w.row(r), w.cols, row.data());
        wr = row.data();
      }
      for (int64_t t = 0; t < n_tokens; ++t) out[t * w.rows + r] = Dot(wr, x + t * w.cols, w.cols);
    }
  };
  if (pool && n_items > 1) {
    pool->ParallelFor(n_items, run);
  } else {
    for (int64_t i = 0; i < n_items; ++i) run(i, 0);
  }
}

}  // namespace herd::kernels
