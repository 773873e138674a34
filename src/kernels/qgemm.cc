#include "kernels/qgemm.h"

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "base/check.h"
#include "kernels/convert.h"
#include "kernels/kquant.h"
#include "kernels/matmul.h"
#include "kernels/qdot.h"

namespace herd::kernels {

namespace {

uint16_t Load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

uint64_t GroupBytes(DType t, int64_t cols) {
  const uint64_t blocks32 = static_cast<uint64_t>(cols) / 32,
                 blocks256 = static_cast<uint64_t>(cols) / 256;
  switch (t) {
    case DType::kQ8_0:
      return (blocks32 + 1) / 2 * Block32PairBytes(512);
    case DType::kQ4_0:
      return (blocks32 + 1) / 2 * Block32PairBytes(256);
    case DType::kQ4_K:
      return blocks256 * kQ4KPackedBytes;
    case DType::kQ6_K:
      return blocks256 * kQ6KPackedBytes;
    default:
      CHECK(false);
      return 0;
  }
}

// The 6-bit value of element e (< 256) of a q6_K block (kquant.h).
int Q6Level(const uint8_t* blk, int e) {
  const int h = e / 128, k = (e % 128) / 32, i = e % 32;
  const uint8_t l = blk[64 * h + i + 32 * (k & 1)];
  const int lo = k < 2 ? (l & 15) : (l >> 4);
  const int hi = (blk[128 + 32 * h + i] >> (2 * k)) & 3;
  return lo | hi << 4;
}

// Packs rows [16 g, 16 g + 16) of w into dst (GroupBytes bytes, zeroed by the caller).
void PackGroup(const MatView& w, int64_t g, uint8_t* dst) {
  const int64_t cols = w.cols;
  const int64_t r0 = g * kPackRows;
  const int valid = static_cast<int>(std::min<int64_t>(kPackRows, w.rows - r0));
  switch (w.dtype) {
    case DType::kQ8_0:
    case DType::kQ4_0: {
      // 4 bytes at a time: q8_0's levels get their sign bit flipped (q + 128), rows past the end
      // hold level 0 (q8_0: 0x80 after the flip; q4_0: nibbles 8).
      const bool q8 = w.dtype == DType::kQ8_0;
      const int64_t blocks = cols / 32;
      const uint64_t src_block = q8 ? 34 : 18, lines = q8 ? 8 : 4;
      const uint32_t flip = q8 ? 0x80808080u : 0, pad = q8 ? 0x80808080u : 0x88888888u;
      for (int64_t b = 0; b < blocks; ++b) {
        uint8_t* wb = const_cast<uint8_t*>(Block32Lines(dst, b, lines * 64));
        uint8_t* scales = const_cast<uint8_t*>(Block32Scales(dst, b, lines * 64));
        for (int r = 0; r < kPackRows; ++r) {
          const uint8_t* src = r < valid ? w.row(r0 + r) + b * src_block : nullptr;
          if (src) std::memcpy(scales + r * 2, src, 2);
          for (uint64_t j = 0; j < lines; ++j) {
            uint32_t v = pad;
            if (src) {
              std::memcpy(&v, src + 2 + 4 * j, 4);
              v ^= flip;
            }
            std::memcpy(wb + j * 64 + r * 4, &v, 4);
          }
        }
      }
      return;
    }
    case DType::kQ4_K: {
      for (int64_t b = 0; b < cols / 256; ++b) {
        uint8_t* o = dst + b * kQ4KPackedBytes;
        for (int r = 0; r < valid; ++r) {
          const uint8_t* src = w.row(r0 + r) + b * 144;
          std::memcpy(o + r * 2, src, 2);           // d
          std::memcpy(o + 32 + r * 2, src + 2, 2);  // dmin
          const uint8_t* s = src + 4;
          for (int j = 0; j < 8; ++j) {
            const int sc = j < 4 ? s[j] & 63 : (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
            const int m = j < 4 ? s[j + 4] & 63 : (s[j + 4] >> 4) | (s[j] >> 6) << 4;
            o[64 + j * 16 + r] = static_cast<uint8_t>(sc);
            o[192 + (j / 2) * 32 + r * 2 + (j & 1)] = static_cast<uint8_t>(m);
          }
          const uint8_t* qs = src + 16;
          for (int line = 0; line < 32; ++line) {
            std::memcpy(o + 320 + line * 64 + r * 4, qs + line * 4, 4);
          }
        }
      }
      return;
    }
    case DType::kQ6_K: {
      for (int64_t b = 0; b < cols / 256; ++b) {
        uint8_t* o = dst + b * kQ6KPackedBytes;
        for (int r = 0; r < valid; ++r) {
          const uint8_t* src = w.row(r0 + r) + b * 210;
          uint8_t level[256];
          for (int e = 0; e < 256; ++e) level[e] = static_cast<uint8_t>(Q6Level(src, e));
          std::memcpy(o + r * 2, src + 208, 2);
          for (int s = 0; s < 16; ++s) o[32 + s * 16 + r] = src[192 + s];
          for (int p = 0; p < 8; ++p) {
            uint8_t* pair = o + 320 + p * 384;
            for (int i = 0; i < 4; ++i) {
              for (int k = 0; k < 4; ++k) {
                const int lo = level[32 * p + 4 * i + k];
                const int hi = level[32 * p + 16 + 4 * i + k];
                pair[i * 64 + r * 4 + k] = static_cast<uint8_t>((lo & 15) | (hi & 15) << 4);
              }
            }
            for (int h = 0; h < 2; ++h) {
              for (int k = 0; k < 4; ++k) {
                int bits = 0;
                for (int i = 0; i < 4; ++i) {
                  bits |= (level[32 * p + 16 * h + 4 * i + k] >> 4) << (2 * i);
                }
                pair[256 + h * 64 + r * 4 + k] = static_cast<uint8_t>(bits);
              }
            }
          }
        }
      }
      return;
    }
    default:
      CHECK(false);
  }
}

// Zeroed, page-aligned memory for packed weights, first touched by the threads that pack it. (Not
// transparent huge pages: on the development VM a first huge-page allocation ran at 0.3 GB/s,
// compaction, against 2.3 GB/s for 4 KiB pages.)
std::shared_ptr<uint8_t[]> AllocateZeroed(uint64_t bytes) {
  const uint64_t len = bytes == 0 ? 1 : bytes;
  void* base = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(base != MAP_FAILED);
  return std::shared_ptr<uint8_t[]>(static_cast<uint8_t*>(base),
                                    [len](uint8_t* p) { ::munmap(p, len); });
}

bool UsesQ8K(DType t) { return t == DType::kQ4_K || t == DType::kQ6_K; }

// Side data of QActs for n tokens of quantised rows (qgemm.h).
void ComputeSides(bool q8k, const uint8_t* q, uint64_t row_bytes, int64_t blocks, int64_t n,
                  float* scale, int32_t* sum) {
  for (int64_t t = 0; t < n; ++t) {
    const uint8_t* row = q + t * row_bytes;
    for (int64_t b = 0; b < blocks; ++b) {
      if (!q8k) {
        const uint8_t* blk = row + b * kQ8_0Bytes;
        scale[t * blocks + b] = F16ToF32(Load16(blk));
        int s = 0;
        for (int k = 0; k < 32; ++k) s += static_cast<int8_t>(blk[2 + k]);
        sum[(t * blocks + b) * 2] = -128 * s;
        sum[(t * blocks + b) * 2 + 1] = -8 * s;
        continue;
      }
      const uint8_t* blk = row + b * kQ8_KBytes;
      std::memcpy(&scale[t * blocks + b], blk, 4);
      int16_t bsums[16];
      std::memcpy(bsums, blk + 4 + 256, 32);
      int32_t* o = sum + (t * blocks + b) * 20;
      for (int p = 0; p < 4; ++p) {
        const int lo = bsums[4 * p] + bsums[4 * p + 1], hi = bsums[4 * p + 2] + bsums[4 * p + 3];
        o[p] = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint16_t>(lo)) |
                                    static_cast<uint32_t>(static_cast<uint16_t>(hi)) << 16);
      }
      for (int j = 0; j < 16; ++j) o[4 + j] = bsums[j];
    }
  }
}

}  // namespace

void UnpackRow(const PackedMat& p, int64_t r, float* out) {
  CHECK(r >= 0 && r < p.rows);
  const uint8_t* group = p.group(r / kPackRows);
  const int rr = static_cast<int>(r % kPackRows);
  switch (p.dtype) {
    case DType::kQ8_0:
    case DType::kQ4_0: {
      const bool q8 = p.dtype == DType::kQ8_0;
      const uint64_t lines_bytes = q8 ? 512 : 256;
      for (int64_t b = 0; b < p.cols / 32; ++b, out += 32) {
        const float d = F16ToF32(Load16(Block32Scales(group, b, lines_bytes) + rr * 2));
        const uint8_t* lines = Block32Lines(group, b, lines_bytes);
        for (int e = 0; e < (q8 ? 32 : 16); ++e) {
          const uint8_t byte = lines[(e / 4) * 64 + rr * 4 + e % 4];
          if (q8) {
            out[e] = d * static_cast<int8_t>(byte ^ 0x80);
          } else {
            out[e] = d * ((byte & 0x0f) - 8);
            out[e + 16] = d * ((byte >> 4) - 8);
          }
        }
      }
      return;
    }
    case DType::kQ4_K:
      for (int64_t b = 0; b < p.cols / 256; ++b) {
        const uint8_t* o = group + b * kQ4KPackedBytes;
        const float d = F16ToF32(Load16(o + rr * 2)), dmin = F16ToF32(Load16(o + 32 + rr * 2));
        for (int s = 0; s < 8; ++s, out += 32) {
          const float ds = d * o[64 + s * 16 + rr];
          const float ms = dmin * o[192 + (s / 2) * 32 + rr * 2 + (s & 1)];
          for (int e = 0; e < 32; ++e) {
            const uint8_t byte = o[320 + ((s / 2) * 8 + e / 4) * 64 + rr * 4 + e % 4];
            out[e] = ds * ((s & 1) ? byte >> 4 : byte & 15) - ms;
          }
        }
      }
      return;
    case DType::kQ6_K:
      for (int64_t b = 0; b < p.cols / 256; ++b) {
        const uint8_t* o = group + b * kQ6KPackedBytes;
        const float d = F16ToF32(Load16(o + rr * 2));
        for (int s = 0; s < 16; ++s, out += 16) {
          const uint8_t* pair = o + 320 + (s / 2) * 384;
          const float ds = d * static_cast<int8_t>(o[32 + s * 16 + rr]);
          for (int e = 0; e < 16; ++e) {
            const int line = e / 4, k = e % 4;
            const uint8_t lo = pair[line * 64 + rr * 4 + k];
            const uint8_t hi = pair[256 + (s & 1) * 64 + rr * 4 + k];
            const int level = ((s & 1) ? lo >> 4 : lo & 15) | ((hi >> (2 * line)) & 3) << 4;
            out[e] = ds * (level - 32);
          }
        }
      }
      return;
    default:
      CHECK(false);
  }
}

bool CanPack(DType t) {
  return t == DType::kQ8_0 || t == DType::kQ4_0 || t == DType::kQ4_K || t == DType::kQ6_K;
}

PackedMat Pack(const MatView& w, ThreadPool* pool) {
  CHECK(CanPack(w.dtype));
  PackedMat p;
  p.dtype = w.dtype;
  p.rows = w.rows;
  p.cols = w.cols;
  p.groups = (w.rows + kPackRows - 1) / kPackRows;
  p.group_bytes = GroupBytes(w.dtype, w.cols);
  const uint64_t bytes = p.group_bytes * static_cast<uint64_t>(p.groups);
  p.storage = AllocateZeroed(bytes);
  p.data = p.storage.get();
  ParallelFor(pool, static_cast<size_t>(p.groups), [&](size_t g, int) {
    PackGroup(w, static_cast<int64_t>(g), p.data + g * p.group_bytes);
  });
  return p;
}

QGemmKernel GetQGemmKernel(DType t, Isa isa) {
  static const bool vnni = DetectCpu().avx512vnni;
  if (isa >= Isa::kAvx512 && vnni) {
    if (const QGemmKernel k = avx512::GetQGemmKernel(t); k.fn) return k;
  }
  if (isa >= Isa::kAvx2) {
    if (const QGemmKernel k = avx2::GetQGemmKernel(t); k.fn) return k;
  }
  return scalar::GetQGemmKernel(t);
}

void QGemmShared(std::span<const MatMulOut> products, const float* x, int64_t n_tokens,
                 ThreadPool* pool, Isa isa) {
  if (products.empty() || n_tokens == 0) return;
  const int64_t cols = products[0].w.cols;
  const int threads = pool ? pool->size() : 1;

  // Activations in the formats the products need (index 0: Q8_0, 1: Q8_K), with side data.
  struct Prepared {
    std::vector<uint8_t> q;
    std::vector<float> scale;
    std::vector<int32_t> sum;
    QActs acts;
  };
  thread_local std::array<Prepared, 2> buffers;
  std::array<Prepared, 2>& prepared = buffers;  // the caller's, also in the pool's threads
  std::array<bool, 2> ready{};
  std::vector<QGemmKernel> kernels;
  for (const MatMulOut& p : products) {
    CHECK(p.w.packed != nullptr && p.w.cols == cols);
    kernels.push_back(GetQGemmKernel(p.w.dtype, isa));
    const bool q8k = UsesQ8K(p.w.dtype);
    Prepared& pr = prepared[q8k];
    if (ready[q8k]) continue;
    ready[q8k] = true;
    const DotKernel dk = GetDotKernel(q8k ? DType::kQ4_K : DType::kQ8_0, isa);
    const ActFormat f = q8k ? ActFormat::kQ8_K : ActFormat::kQ8_0;
    const uint64_t row_bytes = ActRowBytes(f, cols);
    const int64_t blocks = cols / (q8k ? kQ8KBlock : kQ8Block);
    pr.q.resize(row_bytes * n_tokens);
    pr.scale.resize(blocks * n_tokens);
    pr.sum.resize(blocks * n_tokens * (q8k ? 20 : 2));
    auto prepare = [&](size_t t, int) {
      dk.quantize(x + t * cols, cols, pr.q.data() + t * row_bytes);
      ComputeSides(q8k, pr.q.data() + t * row_bytes, row_bytes, blocks, 1,
                   pr.scale.data() + t * blocks, pr.sum.data() + t * blocks * (q8k ? 20 : 2));
    };
    if (pool && n_tokens >= 4 * threads) {
      pool->ParallelFor(n_tokens, prepare);
    } else {
      for (int64_t t = 0; t < n_tokens; ++t) prepare(t, 0);
    }
    pr.acts = QActs{pr.q.data(), row_bytes, pr.scale.data(), pr.sum.data(), blocks};
  }

  // Work items: ranges of 16-row groups of each product, enough for dynamic balancing.
  std::vector<int64_t> first_item(products.size() + 1, 0);
  std::vector<int64_t> groups_per_item(products.size());
  for (size_t i = 0; i < products.size(); ++i) {
    const int64_t groups = products[i].w.packed->groups;
    groups_per_item[i] = std::max<int64_t>(1, groups / (threads * 8));
    first_item[i + 1] = first_item[i] + (groups + groups_per_item[i] - 1) / groups_per_item[i];
  }
  auto run = [&](size_t item, int) {
    const size_t i =
        std::upper_bound(first_item.begin(), first_item.end(), static_cast<int64_t>(item)) -
        first_item.begin() - 1;
    const PackedMat& pm = *products[i].w.packed;
    float* out = products[i].out;
    const QActs& a = prepared[UsesQ8K(pm.dtype)].acts;
    const QGemmKernel& k = kernels[i];
    const int64_t g0 = (static_cast<int64_t>(item) - first_item[i]) * groups_per_item[i];
    const int64_t g1 = std::min(pm.groups, g0 + groups_per_item[i]);
    float partial[kMaxTileTokens * kPackRows];
    const bool unpacked = k.unpack && n_tokens >= kUnpackMinTokens;
    const QGemmFn fn = unpacked ? k.unpacked_fn : k.fn;
    const int tile = unpacked ? k.unpacked_tile : k.tile;
    thread_local std::vector<uint8_t> levels;  // this thread's unpacked group
    if (unpacked) levels.resize(static_cast<uint64_t>(a.blocks) * kUnpackedBytes + 64);
    uint8_t* lv = levels.data() + (64 - reinterpret_cast<uintptr_t>(levels.data()) % 64) % 64;
    // Tokens per chunk: their activations stay in L2 while the item's groups pass (and a group is
    // unpacked once per chunk); a multiple of the tile so that no chunk ends in a short tile.
    const int64_t chunk = std::max<int64_t>(tile, 64 / tile * tile);
    for (int64_t c0 = 0; c0 < n_tokens; c0 += chunk) {
      const int64_t c1 = std::min(n_tokens, c0 + chunk);
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t r0 = g * kPackRows;
        const bool full = r0 + kPackRows <= pm.rows;
        const uint8_t* group = pm.group(g);
        if (unpacked) k.unpack(group, a.blocks, lv), group = lv;
        for (int64_t t = c0; t < c1; t += tile) {
          const int n = static_cast<int>(std::min<int64_t>(tile, c1 - t));
          if (full) {
            fn(group, a, t, n, out + t * pm.rows + r0, pm.rows);
            continue;
          }
          fn(group, a, t, n, partial, kPackRows);
          for (int j = 0; j < n; ++j) {
            std::memcpy(out + (t + j) * pm.rows + r0, partial + j * kPackRows,
                        (pm.rows - r0) * sizeof(float));
          }
        }
      }
    }
  };
  ParallelFor(pool, static_cast<size_t>(first_item.back()), run);
}

}  // namespace herd::kernels
