// Matrix products against weights in their storage dtype. The activations are prepared once per
// call in the format the weight's dot kernel takes (kernels/qdot.h: Q8_0 / Q8_1 / Q8_K for block
// formats), then every (weight row, token) pair is one kernel call. Rows are split over the pool's
// threads; tokens are walked in tiles so a weight row is read from memory once per tile of tokens,
// not once per token. Float weights (f32, bf16, f16: training, and models served as stored) go
// through the blocked GEMM of kernels/gemm.h instead, and block-quantised weights that inference
// repacked (MatView::packed: q8_0, q4_0, q4_K, q6_K) through the integer GEMM of kernels/qgemm.h.
// Either way a token's output row does not depend on the other tokens of the call (batched and
// unbatched inference agree bit for bit).
#pragma once

#include <cstdint>
#include <span>

#include "base/cpu.h"
#include "base/dtype.h"
#include "base/thread_pool.h"

namespace herd::kernels {

struct PackedMat;

// A row-major matrix in a storage dtype: rows x cols, row r at data + r * row_bytes. `packed`,
// when set, is the same matrix repacked for the integer GEMM (kernels/qgemm.h), which matmuls
// then use instead of the rows.
struct MatView {
  DType dtype = DType::kF32;
  int64_t rows = 0, cols = 0;
  const uint8_t* data = nullptr;
  uint64_t row_bytes = 0;
  const PackedMat* packed = nullptr;
  const uint8_t* row(int64_t r) const { return data + r * row_bytes; }
};

// A view of contiguous rows (cols must be a multiple of the dtype's block size).
MatView MakeMatView(DType dtype, int64_t rows, int64_t cols, const void* data);

// Float32 dot product with 8 independent partial sums (vectorisable, and closer to the exact
// value than one running sum).
float Dot(const float* a, const float* b, int64_t n);

// out[t * w.rows + r] = sum_c W[r, c] * x[t * w.cols + c], for t < n_tokens and r < w.rows.
// x: [n_tokens, cols], out: [n_tokens, rows]. Rows are split over the pool's threads
// (pool may be null: single-threaded). Uses the kernels of ActiveIsa().
void MatMul(const MatView& w, const float* x, int64_t n_tokens, float* out, ThreadPool* pool);

// Several matrices applied to the same input (q, k, v; gate, up): the input is quantised once
// and all products run in one parallel region. Every w.cols must be the same.
struct MatMulOut {
  MatView w;
  float* out;
};
void MatMulShared(std::span<const MatMulOut> products, const float* x, int64_t n_tokens,
                  ThreadPool* pool, Isa isa);

// Row r of w as float32 (embedding lookup).
void GetRow(const MatView& w, int64_t r, float* out);

}  // namespace herd::kernels
