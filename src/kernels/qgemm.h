// Block-quantised weights repacked for integer GEMM: the prefill (and batched decode) path for
// q8_0 / q4_0 / q4_K / q6_K weights.
//
// The row-major GGUF layout makes a weight row's block dot a horizontal sum: 32 products spread
// over the lanes of a register that must be folded into one number per (row, token). Repacked,
// 16 rows sit side by side: each 64-byte line holds 4 consecutive elements of each of 16 rows, so
// one vpdpbusd multiplies them by 4 activation bytes broadcast to all lanes and adds into 16 int32
// lanes, one per output row. A block's integer sum is complete in its lane after 8 such steps
// (32 elements), with no shuffles; the weight registers are reused for every token of a tile, the
// activations are broadcast straight from memory.
//
// Arithmetic (the same at every ISA level, bit for bit, and independent of the number of tokens in
// a call, so batched and unbatched inference agree): activations are quantised as the dot kernels
// do (kernels/qdot.h: Q8_0 for q8_0 / q4_0, Q8_K for q4_K / q6_K). For each output row and token,
// every block's integer dot product is exact in int32, and one float accumulator runs over the
// blocks in order:
//   q8_0 / q4_0: isum = sum q_w * q_a (q4_0: q_w = nibble - 8);
//                acc = fma(d_w * d_a, float(isum), acc)
//   q4_K:        per 256-block: sumi = sum_s sc[s] * isum_s (sub-blocks of 32),
//                summ = sum_s m[s] * (sum of q_a over sub-block s);
//                acc = fma(d * d_a, float(sumi), acc); acc = fma(-(dmin * d_a), float(summ), acc)
//   q6_K:        per 256-block: sumi = sum_s sc[s] * sum (q_w - 32) * q_a (sub-blocks of 16);
//                acc = fma(d * d_a, float(sumi), acc)
// This is the structure of ggml's reference dot products (integer sums per block, one float
// multiply-add per block), so results stay within the llama.cpp golden tolerances; they differ
// from the row-major dot kernels (qdot.h, whose float accumulation runs in 8 lanes) by float
// rounding only.
//
// Packed layout of a 16-row group (rows past the matrix's end are zero), a block column after
// another:
//   q8_0: per pair of blocks a line of f16 scales d[2][16], then per block 8 lines (element
//         4j..4j+3 of each row in line j), bytes q ^ 0x80 (unsigned, so vpdpbusd can take them;
//         the bias 128 * sum(q_a) is subtracted exactly).
//   q4_0: as q8_0 with 4 lines per block: line j holds the row's original bytes 4j..4j+3 (low
//         nibbles: elements 4j.., high nibbles: elements 16 + 4j..).
//   q4_K: per 256-block: f16 d[16], f16 dmin[16], u8 sc[8][16], u8 m[4][16][2] (the mins of
//         sub-blocks 2p, 2p+1 side by side), then 32 lines: line 8c + j holds the row's qs bytes
//         32c + 4j .. + 3 (low nibbles: sub-block 2c, high: 2c + 1).
//   q6_K: per 256-block: f16 d[16], i8 sc[16][16], 32 padding bytes, then per pair of sub-blocks
//         (2p, 2p + 1) 4 lines of low 4 bits (line i: elements 4i..4i+3 of sub-block 2p in the low
//         nibbles, of sub-block 2p + 1 in the high ones) and 2 lines of high 2 bits (line of
//         sub-block s: bits 2i, 2i+1 of byte k are the high bits of element 4i + k).
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "base/cpu.h"
#include "base/dtype.h"
#include "base/thread_pool.h"

namespace herd::kernels {

struct MatView;
struct MatMulOut;

inline constexpr int kPackRows = 16;
// Bytes of one 256-block column of a packed q4_K / q6_K group.
inline constexpr uint64_t kQ4KPackedBytes = 320 + 32 * 64, kQ6KPackedBytes = 320 + 8 * 6 * 64;
// q8_0 / q4_0 blocks of a packed group come in pairs: one line of scales (f16 d[2][16]), then the
// two blocks' lines (lines_bytes = 512 or 256 each), so a group is read as one stream.
inline constexpr uint64_t Block32PairBytes(uint64_t lines_bytes) { return 64 + 2 * lines_bytes; }
inline const uint8_t* Block32Scales(const uint8_t* group, int64_t b, uint64_t lines_bytes) {
  return group + static_cast<uint64_t>(b / 2) * Block32PairBytes(lines_bytes) + (b & 1) * 32;
}
inline const uint8_t* Block32Lines(const uint8_t* group, int64_t b, uint64_t lines_bytes) {
  return group + static_cast<uint64_t>(b / 2) * Block32PairBytes(lines_bytes) + 64 +
         (b & 1) * lines_bytes;
}

struct PackedMat {
  DType dtype = DType::kF32;  // the source format
  int64_t rows = 0, cols = 0;
  int64_t groups = 0;        // ceil(rows / 16)
  uint64_t group_bytes = 0;  // a multiple of 64
  std::shared_ptr<uint8_t[]> storage;
  uint8_t* data = nullptr;  // 64-byte aligned
  const uint8_t* group(int64_t g) const { return data + static_cast<uint64_t>(g) * group_bytes; }
};

// Row r of a packed matrix as floats: the same values as DequantizeRow of the original row (the
// embedding lookup of a packed, tied token embedding).
void UnpackRow(const PackedMat& p, int64_t r, float* out);

// Whether weights of dtype t can be packed.
bool CanPack(DType t);
// The packed copy of w (CanPack(w.dtype)); groups are packed in parallel on pool (may be null).
PackedMat Pack(const MatView& w, ThreadPool* pool);

// The activation rows the kernels read: quantised rows (Q8_0 or Q8_K) plus per-block side data
// computed once per matmul: scale[t * blocks + b] = d_a as float; sum[...]:
//   Q8_0: per block the biases -128 * s and -8 * s of s = sum of q_a over the block (q8_0's and
//         q4_0's level offsets), 2 int32 per block;
//   Q8_K: per 256-block 4 int32 holding the int16 pairs (s_2p, s_2p+1) of 32-element sums (q4_K's
//         mins), then the 16 bsums of 16 elements (q6_K's offset), 20 int32 in all.
struct QActs {
  const uint8_t* q = nullptr;  // row t at q + t * row_bytes
  uint64_t row_bytes = 0;
  const float* scale = nullptr;
  const int32_t* sum = nullptr;
  int64_t blocks = 0;  // activation blocks per row (32 or 256 elements)
};

// One 16-row group times tokens t0 .. t0 + n - 1 (n <= kMaxTileTokens): out[i * ldo + r] for
// i < n, r < 16.
using QGemmFn = void (*)(const uint8_t* group, const QActs& a, int64_t t0, int n, float* out,
                         int64_t ldo);
inline constexpr int kMaxTileTokens = 8;
// Optional second form of a kernel for calls with many tokens (prefill; AVX-512 q6_K): the group
// is first unpacked once per chunk of tokens (levels to one byte each, kUnpackedBytes per
// 256-block: the 320 scale bytes as packed, then 64 lines of 16 rows x 4 levels, 4 lines per 16
// elements), and the tiles read the levels instead of re-extracting them from nibbles and bit
// pairs. Same integer sums, same float steps: the same bits as fn.
inline constexpr uint64_t kUnpackedBytes = 320 + 64 * 64;
using UnpackFn = void (*)(const uint8_t* group, int64_t blocks, uint8_t* dst);

struct QGemmKernel {
  QGemmFn fn = nullptr;
  int tile = 1;  // tokens per call the kernel is built for (any n <= kMaxTileTokens works)
  UnpackFn unpack = nullptr;  // with unpacked_fn, for calls of at least kUnpackMinTokens tokens
  QGemmFn unpacked_fn = nullptr;
  int unpacked_tile = 1;
};
inline constexpr int64_t kUnpackMinTokens = 16;

// The kernel for packed weights of dtype t at level isa, or the best lower level with one.
QGemmKernel GetQGemmKernel(DType t, Isa isa);

// MatMulShared for products whose weights are all packed (w.packed set).
void QGemmShared(std::span<const MatMulOut> products, const float* x, int64_t n_tokens,
                 ThreadPool* pool, Isa isa);

namespace qgemm_impl {
// Internal to the SIMD kernel files: a kernel for a fixed number of tokens, and n tokens run in
// calls of at most kMax (kTable[m - 1] for m tokens).
using TileFn = void (*)(const uint8_t* group, const QActs& a, int64_t t0, float* out, int64_t ldo);
template <int kMax, const TileFn* kTable>
void Tiles(const uint8_t* group, const QActs& a, int64_t t0, int n, float* out, int64_t ldo) {
  for (int i = 0; i < n;) {
    const int m = n - i < kMax ? n - i : kMax;
    kTable[m - 1](group, a, t0 + i, out + i * ldo, ldo);
    i += m;
  }
}
}  // namespace qgemm_impl

// Per-level tables (qgemm.cc, qgemm_avx2.cc, qgemm_avx512.cc); fn null: none at that level.
namespace scalar {
QGemmKernel GetQGemmKernel(DType t);
}
namespace avx2 {
QGemmKernel GetQGemmKernel(DType t);
}
// AVX-512 F+BW+VL+VNNI (without VNNI the AVX2 kernels run).
namespace avx512 {
QGemmKernel GetQGemmKernel(DType t);
}

}  // namespace herd::kernels
