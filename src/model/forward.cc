#include "model/forward.h"

#include <cmath>

#include "base/check.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/quant.h"

namespace herd {

bool KVCache::IsCacheType(DType dtype) {
  return dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kF32;
}

KVCache::KVCache(const LlamaConfig& c, int capacity, DType dtype)
    : capacity_(capacity), row_(int64_t{c.n_kv_heads} * c.head_dim), dtype_(dtype) {
  CHECK(IsCacheType(dtype));
  const size_t bytes = static_cast<size_t>(capacity) * row_ * Info(dtype).block_bytes;
  k_.assign(c.n_layers, std::vector<uint8_t>(bytes));
  v_.assign(c.n_layers, std::vector<uint8_t>(bytes));
}

uint64_t KVCache::BytesFor(const LlamaConfig& c, int capacity, DType dtype) {
  return 2ull * c.n_layers * capacity * c.n_kv_heads * c.head_dim * Info(dtype).block_bytes;
}

void KVCache::Store(int layer, int pos, int n, const float* k, const float* v) {
  CHECK(pos >= 0 && n >= 0 && pos + n <= capacity_);
  const size_t at = static_cast<size_t>(pos) * row_ * Info(dtype_).block_bytes;
  kernels::QuantizeRow(dtype_, k, n * row_, &k_[layer][at]);
  kernels::QuantizeRow(dtype_, v, n * row_, &v_[layer][at]);
}

kernels::KVRows KVCache::Rows(int layer) const {
  return {dtype_, k_[layer].data(), v_[layer].data(), row_};
}

void KVCache::Truncate(int n) {
  CHECK(n >= 0 && n <= size_);
  size_ = n;
}

namespace {

// Prompts are processed in chunks of this many tokens, so activations stay bounded
// (chunk x ffn_dim floats) however long the prompt.
constexpr int kChunk = 256;

// Activations of one chunk of m tokens.
struct Scratch {
  std::vector<float> x, xn, q, k, v, att, tmp, gate, up, cos, sin;
  Scratch(const LlamaConfig& c, int m) {
    const int64_t q_dim = int64_t{c.n_heads} * c.head_dim, kv = int64_t{c.n_kv_heads} * c.head_dim;
    x.resize(m * c.dim), xn.resize(m * c.dim), tmp.resize(m * c.dim);
    q.resize(m * q_dim), att.resize(m * q_dim), k.resize(m * kv), v.resize(m * kv);
    gate.resize(int64_t{m} * c.ffn_dim), up.resize(int64_t{m} * c.ffn_dim);
    cos.resize(m * c.head_dim / 2), sin.resize(m * c.head_dim / 2);
  }
};

// Angles in double (pos * inv_freq reaches 10^5 radians at long context; float32 would lose
// ~1e-2 of it), rounded to float once.
void RopeTables(const Model& model, int pos0, int m, Scratch* s) {
  const size_t half = model.rope_inv_freq.size();
  for (int t = 0; t < m; ++t) {
    for (size_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(pos0 + t) * model.rope_inv_freq[i];
      s->cos[t * half + i] = static_cast<float>(std::cos(angle));
      s->sin[t * half + i] = static_cast<float>(std::sin(angle));
    }
  }
}

void AttentionBlock(const Model& model, int layer, int m, KVCache* cache, Scratch* s,
                    ThreadPool* pool) {
  const LlamaConfig& c = model.config;
  const LayerWeights& w = model.weights.layers[layer];
  const int pos0 = cache->size(), half = c.head_dim / 2;
  const int64_t q_dim = int64_t{c.n_heads} * c.head_dim, kv = int64_t{c.n_kv_heads} * c.head_dim;
  for (int t = 0; t < m; ++t)
    kernels::RMSNorm(&s->x[t * c.dim], w.attn_norm.f32(), c.dim, c.norm_eps, &s->xn[t * c.dim]);
  // q: [m, n_heads * head_dim]; k, v: [m, n_kv_heads * head_dim]
  const kernels::MatMulOut qkv[] = {
      {w.wq.mat(), s->q.data()}, {w.wk.mat(), s->k.data()}, {w.wv.mat(), s->v.data()}};
  kernels::MatMulShared(qkv, s->xn.data(), m, pool, ActiveIsa());
  for (int t = 0; t < m; ++t) {
    const float* cos = &s->cos[t * half];
    const float* sin = &s->sin[t * half];
    kernels::RopeInterleaved(&s->q[t * q_dim], c.n_heads, c.head_dim, cos, sin);
    kernels::RopeInterleaved(&s->k[t * kv], c.n_kv_heads, c.head_dim, cos, sin);
  }
  cache->Store(layer, pos0, m, s->k.data(), s->v.data());
  kernels::Attention(s->q.data(), cache->Rows(layer), m, pos0,
                     {c.n_heads, c.n_kv_heads, c.head_dim}, s->att.data(), pool);
  kernels::MatMul(w.wo.mat(), s->att.data(), m, s->tmp.data(), pool);  // [m, dim]
  kernels::Add(s->x.data(), s->tmp.data(), int64_t{m} * c.dim);
}

void FeedForwardBlock(const Model& model, int layer, int m, Scratch* s, ThreadPool* pool) {
  const LlamaConfig& c = model.config;
  const LayerWeights& w = model.weights.layers[layer];
  for (int t = 0; t < m; ++t)
    kernels::RMSNorm(&s->x[t * c.dim], w.ffn_norm.f32(), c.dim, c.norm_eps, &s->xn[t * c.dim]);
  const kernels::MatMulOut gate_up[] = {{w.w1.mat(), s->gate.data()},  // [m, ffn_dim]
                                        {w.w3.mat(), s->up.data()}};
  kernels::MatMulShared(gate_up, s->xn.data(), m, pool, ActiveIsa());
  kernels::SwiGLU(s->gate.data(), s->up.data(), int64_t{m} * c.ffn_dim);
  kernels::MatMul(w.w2.mat(), s->gate.data(), m, s->tmp.data(), pool);  // [m, dim]
  kernels::Add(s->x.data(), s->tmp.data(), int64_t{m} * c.dim);
}

// Runs m tokens; writes logits of the last `n_out` of them to `out` ([n_out, vocab]).
void ForwardChunk(const Model& model, std::span<const int> tokens, KVCache* cache, int n_out,
                  float* out, ThreadPool* pool) {
  const LlamaConfig& c = model.config;
  const int m = static_cast<int>(tokens.size());
  Scratch s(c, m);
  RopeTables(model, cache->size(), m, &s);
  const auto embed = model.weights.tok_embeddings.mat();
  for (int t = 0; t < m; ++t) kernels::GetRow(embed, tokens[t], &s.x[t * c.dim]);  // [m, dim]
  for (int layer = 0; layer < c.n_layers; ++layer) {
    AttentionBlock(model, layer, m, cache, &s, pool);
    FeedForwardBlock(model, layer, m, &s, pool);
  }
  cache->Advance(m);
  if (n_out == 0) return;
  const int first = m - n_out;
  for (int t = first; t < m; ++t)
    kernels::RMSNorm(&s.x[t * c.dim], model.weights.norm.f32(), c.dim, c.norm_eps,
                     &s.xn[(t - first) * c.dim]);
  kernels::MatMul(model.weights.output.mat(), s.xn.data(), n_out, out, pool);  // [n_out, vocab]
}

}  // namespace

Status Forward(const Model& model, std::span<const int> tokens, KVCache* cache, bool all_logits,
               std::vector<float>* logits, ThreadPool* pool) {
  const LlamaConfig& c = model.config;
  const int n = static_cast<int>(tokens.size());
  if (n == 0) return Status::Error("no tokens to run");
  for (int i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
      return Status::Errorf("token {} (at index {}) is out of range: the vocabulary has {} tokens",
                            tokens[i], i, c.vocab_size);
  }
  if (cache->size() + n > cache->capacity())
    return Status::Errorf(
        "context full: {} positions in use + {} new tokens exceed the context of {} positions",
        cache->size(), n, cache->capacity());
  logits->resize(static_cast<size_t>(all_logits ? n : 1) * c.vocab_size);
  for (int start = 0; start < n; start += kChunk) {
    const int m = std::min(kChunk, n - start);
    const bool last = start + m == n;
    const int n_out = all_logits ? m : (last ? 1 : 0);
    float* out = logits->data() + (all_logits ? static_cast<size_t>(start) * c.vocab_size : 0);
    ForwardChunk(model, tokens.subspan(start, m), cache, n_out, out, pool);
  }
  return Status::Ok();
}

}  // namespace herd
