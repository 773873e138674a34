#include "kernels/attention.h"

#include <algorithm>

#include "base/check.h"
#include "kernels/attention_impl.h"
#include "kernels/convert.h"

namespace herd::kernels {
namespace scalar {
namespace {

using attention_impl::BF16Elem;
using attention_impl::F16Elem;

inline float ToFloat(float x) { return x; }
inline float ToFloat(F16Elem x) { return F16ToF32(x.bits); }
inline float ToFloat(BF16Elem x) { return BF16ToF32(x.bits); }

template <typename T>
struct Ops {
  static float Dot(const float* q, const T* k, int d) {
    float s[8] = {};
    for (int i = 0; i < d; ++i) s[i & 7] += q[i] * ToFloat(k[i]);
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  }
  static void Axpy(float a, const T* v, float* acc, int d) {
    for (int i = 0; i < d; ++i) acc[i] += a * ToFloat(v[i]);
  }
  static void Scale(float* acc, float c, int d) {
    for (int i = 0; i < d; ++i) acc[i] *= c;
  }
};

}  // namespace

void AttentionRange(const float* q, const KVRows& kv, int64_t start_pos, const AttentionShape& s,
                    float* out, size_t item_begin, size_t item_end) {
  attention_impl::AttentionRangeAnyType<Ops>(q, kv, start_pos, s, out, item_begin, item_end);
}

}  // namespace scalar

AttentionRangeFn GetAttentionRange(Isa isa) {
  if (isa >= Isa::kAvx512) return avx512::AttentionRange;
  return isa >= Isa::kAvx2 ? avx2::AttentionRange : scalar::AttentionRange;
}

void Attention(const float* q, const KVRows& kv, int64_t n_tokens, int64_t start_pos,
               const AttentionShape& s, float* out, ThreadPool* pool, Isa isa) {
  CHECK(s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0);
  CHECK(kv.dtype == DType::kF32 || kv.dtype == DType::kF16 || kv.dtype == DType::kBF16);
  if (isa >= Isa::kAvx512 && n_tokens > 1 && avx512::HasAttentionBlock(s)) {
    // Blocks of tokens per kv head (keys and values converted once per block), last block first.
    const int64_t nb = avx512::kAttentionBlock, blocks = (n_tokens + nb - 1) / nb;
    ParallelFor(pool, static_cast<size_t>(blocks * s.n_kv_heads), [&](size_t i, int) {
      const int64_t item = blocks * s.n_kv_heads - 1 - static_cast<int64_t>(i);
      const int64_t t0 = item / s.n_kv_heads * nb;
      avx512::AttentionBlock(q, kv, start_pos, s, out, t0,
                             static_cast<int>(std::min(nb, n_tokens - t0)),
                             static_cast<int>(item % s.n_kv_heads));
    });
    return;
  }
  const AttentionRangeFn range = GetAttentionRange(isa);
  const size_t n_items = static_cast<size_t>(n_tokens) * s.n_kv_heads;
  // Later tokens attend to more keys: hand items out one by one, last token first.
  auto run = [&](size_t i, int) {
    const size_t item = n_items - 1 - i;
    range(q, kv, start_pos, s, out, item, item + 1);
  };
  if (pool && n_items > 1) {
    pool->ParallelFor(n_items, run);
  } else {
    range(q, kv, start_pos, s, out, 0, n_items);
  }
}

void Attention(const float* q, const KVRows& kv, int64_t n_tokens, int64_t start_pos,
               const AttentionShape& s, float* out, ThreadPool* pool) {
  Attention(q, kv, n_tokens, start_pos, s, out, pool, ActiveIsa());
}

void Attention(const float* q, const float* k, const float* v, int64_t n_tokens, int64_t start_pos,
               const AttentionShape& s, float* out, ThreadPool* pool) {
  const KVRows kv{DType::kF32, k, v, int64_t{s.n_kv_heads} * s.head_dim};
  Attention(q, kv, n_tokens, start_pos, s, out, pool, ActiveIsa());
}

}  // namespace herd::kernels
