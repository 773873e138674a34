// Matrix products against weights in their storage dtype (f32, f16, bf16, q8_0, q4_0): each weight
// row is converted to float32 once per call and reused for every token, then dotted in float32.
// This is the scalar reference path; SIMD kernels come with the performance work and are tested
// against it.
#pragma once

#include <cstdint>

#include "base/dtype.h"
#include "base/thread_pool.h"

namespace herd::kernels {

// A row-major matrix in a storage dtype: rows x cols, row r at data + r * row_bytes.
struct MatView {
  DType dtype = DType::kF32;
  int64_t rows = 0, cols = 0;
  const uint8_t* data = nullptr;
  uint64_t row_bytes = 0;
  const uint8_t* row(int64_t r) const { return data + r * row_bytes; }
};

// A view of contiguous rows (cols must be a multiple of the dtype's block size).
MatView MakeMatView(DType dtype, int64_t rows, int64_t cols, const void* data);

// Float32 dot product with 8 independent partial sums (vectorisable, and closer to the exact
// value than one running sum).
float Dot(const float* a, const float* b, int64_t n);

// out[t * w.rows + r] = sum_c W[r, c] * x[t * w.cols + c], for t < n_tokens and r < w.rows.
// x: [n_tokens, cols], out: [n_tokens, rows]. Rows are split over the pool's threads
// (pool may be null: single-threaded).
void MatMul(const MatView& w, const float* x, int64_t n_tokens, float* out, ThreadPool* pool);

// Row r of w as float32 (embedding lookup).
void GetRow(const MatView& w, int64_t r, float* out);

}  // namespace herd::kernels
