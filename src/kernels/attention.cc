#include "kernels/attention.h"

#include <cmath>
#include <vector>

#include "base/check.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"

namespace herd::kernels {

void Attention(const float* q, const float* k, const float* v, int64_t n_tokens, int64_t start_pos,
               const AttentionShape& s, float* out, ThreadPool* pool) {
  CHECK(s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0);
  const int group = s.n_heads / s.n_kv_heads;
  const int64_t q_stride = static_cast<int64_t>(s.n_heads) * s.head_dim;
  const int64_t kv_stride = static_cast<int64_t>(s.n_kv_heads) * s.head_dim;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
  auto run = [&](size_t item, int) {
    thread_local std::vector<float> scores;
    const int64_t t = static_cast<int64_t>(item) / s.n_heads;
    const int h = static_cast<int>(item % s.n_heads);
    const int64_t n_keys = start_pos + t + 1;
    const float* qh = q + t * q_stride + static_cast<int64_t>(h) * s.head_dim;
    const int64_t kv_off = static_cast<int64_t>(h / group) * s.head_dim;
    scores.resize(n_keys);
    for (int64_t j = 0; j < n_keys; ++j)
      scores[j] = Dot(qh, k + j * kv_stride + kv_off, s.head_dim) * scale;
    Softmax(scores.data(), n_keys);
    float* oh = out + t * q_stride + static_cast<int64_t>(h) * s.head_dim;
    for (int d = 0; d < s.head_dim; ++d) oh[d] = 0;
    for (int64_t j = 0; j < n_keys; ++j) {
      const float p = scores[j];
      const float* vj = v + j * kv_stride + kv_off;
      for (int d = 0; d < s.head_dim; ++d) oh[d] += p * vj[d];
    }
  };
  const size_t n_items = static_cast<size_t>(n_tokens) * s.n_heads;
  if (pool && n_items > 1) {
    pool->ParallelFor(n_items, run);
  } else {
    for (size_t i = 0; i < n_items; ++i) run(i, 0);
  }
}

}  // namespace herd::kernels
