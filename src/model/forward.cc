#include "model/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/check.h"
#include "base/cpu.h"
#include "base/grow.h"
#include "kernels/attention.h"
#include "kernels/backward.h"
#include "kernels/ggml_numerics.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/quant.h"

namespace herd {

bool KVCache::IsCacheType(DType dtype) {
  return dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kF32;
}

KVCache::KVCache(const LlamaConfig& c, int capacity, DType dtype)
    : capacity_(capacity),
      row_(int64_t{c.n_kv_heads} * c.head_dim),
      n_kv_heads_(c.n_kv_heads),
      head_dim_(c.head_dim),
      dtype_(dtype) {
  CHECK(IsCacheType(dtype));
  k_blocked_ = head_major() && ActiveIsa() >= Isa::kAvx512 &&
               kernels::avx512::HasAttentionBlock({c.n_heads, c.n_kv_heads, c.head_dim});
  constexpr int kBlock = kernels::KVRows::kKeyBlock;
  head_positions_ = k_blocked_ ? (capacity + kBlock - 1) / kBlock * kBlock : capacity;
  const size_t bytes = static_cast<size_t>(head_positions_) * row_ * Info(dtype).block_bytes;
  k_.assign(c.n_layers, std::vector<uint8_t>(bytes));
  v_.assign(c.n_layers, std::vector<uint8_t>(bytes));
}

uint64_t KVCache::BytesFor(const LlamaConfig& c, int capacity, DType dtype) {
  return 2ull * c.n_layers * capacity * c.n_kv_heads * c.head_dim * Info(dtype).block_bytes;
}

void KVCache::Store(int layer, int pos, int n, const float* k, const float* v) {
  CHECK(pos >= 0 && n >= 0 && pos + n <= capacity_);
  const uint64_t eb = Info(dtype_).block_bytes;
  if (!head_major()) {
    const size_t at = static_cast<size_t>(pos) * row_ * eb;
    kernels::QuantizeRow(dtype_, k, n * row_, &k_[layer][at]);
    kernels::QuantizeRow(dtype_, v, n * row_, &v_[layer][at]);
    return;
  }
  uint16_t key[kernels::kMaxHeadDimForBlocks];
  for (int t = 0; t < n; ++t) {
    for (int h = 0; h < n_kv_heads_; ++h) {
      const size_t head = static_cast<size_t>(h) * head_positions_ * head_dim_;
      const int64_t from = t * row_ + int64_t{h} * head_dim_;
      kernels::QuantizeRow(dtype_, v + from, head_dim_,
                           &v_[layer][(head + static_cast<size_t>(pos + t) * head_dim_) * eb]);
      if (!k_blocked_) {
        kernels::QuantizeRow(dtype_, k + from, head_dim_,
                             &k_[layer][(head + static_cast<size_t>(pos + t) * head_dim_) * eb]);
        continue;
      }
      // 16-bit elements (f16 / bf16): converted as a row, then placed one per block row.
      kernels::QuantizeRow(dtype_, k + from, head_dim_, reinterpret_cast<uint8_t*>(key));
      auto* dst = reinterpret_cast<uint16_t*>(k_[layer].data()) + head;
      for (int i = 0; i < head_dim_; ++i)
        dst[kernels::KVRows::KeyOffset(pos + t, i, head_dim_)] = key[i];
    }
  }
}

kernels::KVRows KVCache::Rows(int layer) const {
  if (!head_major()) return {dtype_, k_[layer].data(), v_[layer].data(), row_};
  return {dtype_,
          k_[layer].data(),
          v_[layer].data(),
          head_dim_,
          int64_t{head_positions_} * head_dim_,
          k_blocked_};
}

void KVCache::CopyPrefix(const KVCache& src, int n) {
  CHECK(&src != this && src.dtype_ == dtype_ && src.row_ == row_ && src.k_.size() == k_.size() &&
        src.k_blocked_ == k_blocked_);
  CHECK(n >= 0 && n <= src.size_ && n <= capacity_);
  const uint64_t eb = Info(dtype_).block_bytes;
  // Position-major: one run of n rows; head-major: one run of n positions per kv head (whole
  // blocks of keys when they are blocked; both caches allocate whole blocks).
  const int runs = head_major() ? n_kv_heads_ : 1;
  constexpr int kBlock = kernels::KVRows::kKeyBlock;
  const int64_t key_positions = k_blocked_ ? (n + kBlock - 1) / kBlock * kBlock : n;
  const size_t v_bytes = static_cast<size_t>(n) * row_ * eb / runs;
  const size_t k_bytes = static_cast<size_t>(key_positions) * row_ * eb / runs;
  for (size_t layer = 0; layer < k_.size(); ++layer) {
    for (int h = 0; h < runs; ++h) {
      const size_t dst = static_cast<size_t>(h) * head_positions_ * head_dim_ * eb;
      const size_t from = static_cast<size_t>(h) * src.head_positions_ * head_dim_ * eb;
      std::memcpy(k_[layer].data() + dst, src.k_[layer].data() + from, k_bytes);
      std::memcpy(v_[layer].data() + dst, src.v_[layer].data() + from, v_bytes);
    }
  }
  size_ = n;
}

void KVCache::Truncate(int n) {
  CHECK(n >= 0 && n <= size_);
  size_ = n;
}

namespace {

// Rows (tokens of all sequences together) are processed in chunks of at most this many, so
// activations stay bounded (chunk x ffn_dim floats) however long the prompts.
constexpr int kChunk = 256;
constexpr int kGgmlChunk = 512;

// One sequence's rows within a chunk: rows row0 .. row0 + n - 1 run `tokens` at positions
// pos0 .. pos0 + n - 1 of `cache` (pos0 = cache->size() when the chunk starts); the logits of the
// last n_out of them are wanted.
struct Segment {
  KVCache* cache = nullptr;
  const int* tokens = nullptr;
  int row0 = 0, n = 0, pos0 = 0, n_out = 0;
};

// Activations of one chunk of up to m rows. Buffers only grow: one Scratch per calling thread is
// reused across calls, so a decode step allocates nothing once the first step has run.
struct Scratch {
  AlignedFloats x, xn, q, k, v, att, tmp, gate, up, cos, sin;
  std::vector<Segment> segs;            // the chunk's segments
  std::vector<int64_t> first_att_item;  // attention items before each segment (+ the total)

  void Reserve(const LlamaConfig& c, int m) {
    const int64_t q_dim = int64_t{c.n_heads} * c.head_dim, kv = int64_t{c.n_kv_heads} * c.head_dim;
    Grow(x, m * c.dim), Grow(xn, m * c.dim), Grow(tmp, m * c.dim);
    Grow(q, m * q_dim), Grow(att, m * q_dim), Grow(k, m * kv), Grow(v, m * kv);
    Grow(gate, int64_t{m} * c.ffn_dim), Grow(up, int64_t{m} * c.ffn_dim);
    Grow(cos, int64_t{m} * (c.head_dim / 2)), Grow(sin, int64_t{m} * (c.head_dim / 2));
  }
};

// Where one layer's activations of a chunk live ([m, width] each). Inference: the chunk's scratch
// buffers, reused by every layer (the residual stream x = h = out updated in place, SwiGLU in
// place: act = gate). A training forward (ForwardRecord): the tape's rows, so that every activation
// is recorded where it is computed, without copies (out: the next layer's x, or x_final).
struct LayerActs {
  float *x, *xn_attn, *q, *k, *v, *att, *h, *xn_ffn, *gate, *up, *act, *out;
  float *attn_scale = nullptr, *ffn_scale = nullptr;  // [m] RMSNorm's row scales (training)
};

// Where a chunk's activations go: `tape` (null in inference) from row row0.
struct Recorder {
  ForwardTape* tape = nullptr;
  int64_t row0 = 0;  // the chunk's first row in the tape

  LayerActs Layer(const LlamaConfig& c, int layer, Scratch* s) const {
    if (!tape) {
      float* x = s->x.data();
      return {x, s->xn.data(), s->q.data(),    s->k.data(),  s->v.data(),    s->att.data(),
              x, s->xn.data(), s->gate.data(), s->up.data(), s->gate.data(), x};
    }
    const int64_t q_dim = int64_t{c.n_heads} * c.head_dim, kv = int64_t{c.n_kv_heads} * c.head_dim;
    LayerTape& t = tape->layers[layer];
    auto at = [this](AlignedFloats& v, int64_t width) { return v.data() + row0 * width; };
    float* out =
        layer + 1 < c.n_layers ? at(tape->layers[layer + 1].x, c.dim) : at(tape->x_final, c.dim);
    return {at(t.x, c.dim),        at(t.xn_attn, c.dim), at(t.q, q_dim),       at(t.k, kv),
            at(t.v, kv),           at(t.att, q_dim),     at(t.h, c.dim),       at(t.xn_ffn, c.dim),
            at(t.gate, c.ffn_dim), at(t.up, c.ffn_dim),  at(t.act, c.ffn_dim), out,
            at(t.attn_scale, 1),   at(t.ffn_scale, 1)};
  }
  // RoPE tables [m, head_dim / 2] and the final norm's input and output [m, dim].
  float* Cos(const LlamaConfig& c, Scratch* s) const {
    return tape ? tape->cos.data() + row0 * (c.head_dim / 2) : s->cos.data();
  }
  float* Sin(const LlamaConfig& c, Scratch* s) const {
    return tape ? tape->sin.data() + row0 * (c.head_dim / 2) : s->sin.data();
  }
  float* XFinal(const LlamaConfig& c, Scratch* s) const {
    return tape ? tape->x_final.data() + row0 * c.dim : s->x.data();
  }
  float* XnFinal(const LlamaConfig& c, Scratch* s) const {
    return tape ? tape->xn_final.data() + row0 * c.dim : s->xn.data();
  }
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

// Row r's cos / sin at its own position. Angles in double (pos * inv_freq reaches 10^5 radians at
// long context; float32 would lose ~1e-2 of it), rounded to float once.
// (Numerics::kGgml: ggml's float tables, kernels/ggml_numerics.h.)
void RopeTables(const Model& model, std::span<const Segment> segs, float* cos, float* sin) {
  const size_t half = model.rope_inv_freq.size();
  for (const Segment& g : segs) {
    for (int t = 0; t < g.n; ++t) {
      const size_t row = static_cast<size_t>(g.row0 + t);
      if (model.numerics == Numerics::kGgml) {
        kernels::ggml::RopeTable(g.pos0 + t, model.config.head_dim,
                                 static_cast<float>(model.config.rope_theta), &cos[row * half],
                                 &sin[row * half]);
        continue;
      }
      for (size_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(g.pos0 + t) * model.rope_inv_freq[i];
        cos[row * half + i] = static_cast<float>(std::cos(angle));
        sin[row * half + i] = static_cast<float>(std::sin(angle));
      }
    }
  }
}

// kernels::Attention for every segment (each over its own cache, from its own position) in one
// parallel region: items are (segment, token, kv head) and each runs exactly the code
// kernels::Attention runs for that (token, kv head), so a row's result does not depend on the
// other rows. One region instead of one per segment keeps all threads busy in a decode step,
// where a segment alone has only n_kv_heads items.
void SegmentAttention(const LlamaConfig& c, int layer, std::span<const Segment> segs,
                      const float* q, float* att, Scratch* s, ThreadPool* pool) {
  CHECK(c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads == 0);
  const kernels::AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
  const kernels::AttentionRangeFn range = kernels::GetAttentionRange(ActiveIsa());
  const int64_t q_dim = int64_t{c.n_heads} * c.head_dim;
  auto& first = s->first_att_item;
  first.assign(1, 0);
  for (const Segment& g : segs) first.push_back(first.back() + int64_t{g.n} * c.n_kv_heads);
  const int64_t n_items = first.back();
  auto run_items = [&](size_t seg, int64_t begin, int64_t end) {
    const Segment& g = segs[seg];
    const int64_t row = int64_t{g.row0} * q_dim;
    range(q + row, g.cache->Rows(layer), g.pos0, shape, att + row, static_cast<size_t>(begin),
          static_cast<size_t>(end));
  };
  if (!pool || n_items <= 1) {
    for (size_t i = 0; i < segs.size(); ++i) run_items(i, 0, first[i + 1] - first[i]);
    return;
  }
  // Later tokens of a segment attend to more keys: hand items out from the end, as
  // kernels::Attention does.
  pool->ParallelFor(n_items, [&](size_t i, int) {
    const int64_t item = n_items - 1 - static_cast<int64_t>(i);
    const size_t seg = std::upper_bound(first.begin(), first.end(), item) - first.begin() - 1;
    const int64_t local = item - first[seg];
    run_items(seg, local, local + 1);
  });
}

// fn(t) for every row t < m: over the pool once there are enough rows to pay for waking it
// (prefill, training), else on the calling thread. Rows are independent, so the result is the same.
template <typename Fn>
void ForRows(int m, ThreadPool* pool, const Fn& fn) {
  constexpr int kRowsPerItem = 16;
  if (!pool || m < 2 * kRowsPerItem) {
    for (int t = 0; t < m; ++t) fn(t);
    return;
  }
  ParallelForBlocks(pool, m, kRowsPerItem, [&](int64_t t) { fn(static_cast<int>(t)); });
}

// Training: kernels::CausalAttention per (segment, kv head), blocks of queries as matrix products
// over the segment's own keys and values (k, v: the tape's rows; every segment starts at position
// 0, no cache); the backward recomputes exactly its probabilities.
void TrainingAttention(const LlamaConfig& c, std::span<const Segment> segs, const float* q,
                       const float* k, const float* v, float* att, ThreadPool* pool) {
  const kernels::AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
  const int64_t q_dim = int64_t{c.n_heads} * c.head_dim, kv = int64_t{c.n_kv_heads} * c.head_dim;
  const int64_t n_items = static_cast<int64_t>(segs.size()) * c.n_kv_heads;
  auto run = [&](size_t item, int) {
    const Segment& g = segs[item / c.n_kv_heads];
    CHECK(g.cache == nullptr && g.pos0 == 0);
    const int64_t row = int64_t{g.row0} * q_dim, kv_row = int64_t{g.row0} * kv;
    kernels::CausalAttention(q + row, k + kv_row, v + kv_row, kv, g.n, 0, shape,
                             static_cast<int>(item % c.n_kv_heads), att + row);
  };
  ParallelFor(pool, static_cast<size_t>(n_items), run);
}

// The ops whose arithmetic depends on model.numerics. Norm stores the row's scale at *scale
// (training: Numerics::kDefault) when scale is not null.
void Norm(const Model& model, const float* x, const Weight& w, float* out, float* scale = nullptr) {
  const LlamaConfig& c = model.config;
  if (model.numerics == Numerics::kGgml) {
    CHECK(scale == nullptr);
    kernels::ggml::RmsNorm(x, w.f32(), c.dim, c.norm_eps, out);
  } else {
    const float r = kernels::RMSNorm(x, w.f32(), c.dim, c.norm_eps, out);
    if (scale) *scale = r;
  }
}
void Project(const Model& model, std::span<const kernels::MatMulOut> products, const float* x,
             int m, ThreadPool* pool) {
  if (model.numerics == Numerics::kGgml) {
    for (const kernels::MatMulOut& p : products) kernels::ggml::MatMul(p.w, x, m, p.out, pool);
  } else {
    kernels::MatMulShared(products, x, m, pool, ActiveIsa());
  }
}
void Project(const Model& model, const Weight& w, const float* x, int m, float* out,
             ThreadPool* pool) {
  const kernels::MatMulOut p{w.mat(), out};
  Project(model, {&p, 1}, x, m, pool);
}

// Appends the chunk's keys and values to each segment's cache (inference).
void StoreKeysValues(const LlamaConfig& c, int layer, std::span<const Segment> segs,
                     const LayerActs& a) {
  const int64_t kv = int64_t{c.n_kv_heads} * c.head_dim;
  for (const Segment& g : segs)
    g.cache->Store(layer, g.pos0, g.n, &a.k[g.row0 * kv], &a.v[g.row0 * kv]);
}

void AttentionBlock(const Model& model, int layer, std::span<const Segment> segs, int m,
                    const LayerActs& a, Scratch* s, const Recorder& rec, ThreadPool* pool) {
  const LlamaConfig& c = model.config;
  const LayerWeights& w = model.weights.layers[layer];
  const int half = c.head_dim / 2;
  const int64_t q_dim = int64_t{c.n_heads} * c.head_dim, kv = int64_t{c.n_kv_heads} * c.head_dim;
  ForRows(m, pool, [&](int t) {
    Norm(model, &a.x[t * c.dim], w.attn_norm, &a.xn_attn[t * c.dim],
         a.attn_scale ? &a.attn_scale[t] : nullptr);
  });
  // q: [m, n_heads * head_dim]; k, v: [m, n_kv_heads * head_dim]
  const kernels::MatMulOut qkv[] = {{w.wq.mat(), a.q}, {w.wk.mat(), a.k}, {w.wv.mat(), a.v}};
  Project(model, qkv, a.xn_attn, m, pool);
  const auto rope =
      model.numerics == Numerics::kGgml ? kernels::ggml::Rope : kernels::RopeInterleaved;
  const float* cos_table = rec.Cos(c, s);
  const float* sin_table = rec.Sin(c, s);
  ForRows(m, pool, [&](int t) {
    const float* cos = &cos_table[t * half];
    const float* sin = &sin_table[t * half];
    rope(&a.q[t * q_dim], c.n_heads, c.head_dim, cos, sin);
    rope(&a.k[t * kv], c.n_kv_heads, c.head_dim, cos, sin);
  });
  if (rec.tape) {
    TrainingAttention(c, segs, a.q, a.k, a.v, a.att, pool);
  } else if (model.numerics == Numerics::kGgml) {
    StoreKeysValues(c, layer, segs, a);
    const kernels::AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
    for (const Segment& g : segs) {
      kernels::ggml::Attention(&a.q[g.row0 * q_dim], g.cache->Rows(layer), g.n, g.pos0, shape,
                               &a.att[g.row0 * q_dim], pool);
    }
  } else {
    StoreKeysValues(c, layer, segs, a);
    SegmentAttention(c, layer, segs, a.q, a.att, s, pool);
  }
  Project(model, w.wo, a.att, m, s->tmp.data(), pool);  // [m, dim]
  ForRows(m, pool, [&](int t) {
    kernels::Add(&a.x[t * c.dim], &s->tmp[t * c.dim], c.dim, &a.h[t * c.dim]);
  });
}

void FeedForwardBlock(const Model& model, int layer, int m, const LayerActs& a, Scratch* s,
                      ThreadPool* pool) {
  const LlamaConfig& c = model.config;
  const LayerWeights& w = model.weights.layers[layer];
  ForRows(m, pool, [&](int t) {
    Norm(model, &a.h[t * c.dim], w.ffn_norm, &a.xn_ffn[t * c.dim],
         a.ffn_scale ? &a.ffn_scale[t] : nullptr);
  });
  const kernels::MatMulOut gate_up[] = {{w.w1.mat(), a.gate},  // [m, ffn_dim]
                                        {w.w3.mat(), a.up}};
  Project(model, gate_up, a.xn_ffn, m, pool);
  const int64_t f = c.ffn_dim;
  if (model.numerics == Numerics::kGgml) {
    CHECK(a.act == a.gate);  // inference only: in place
    ForRows(m, pool, [&](int t) { kernels::ggml::SwiGLU(&a.gate[t * f], &a.up[t * f], f); });
  } else {
    ForRows(m, pool,
            [&](int t) { kernels::SwiGLU(&a.gate[t * f], &a.up[t * f], f, &a.act[t * f]); });
  }
  Project(model, w.w2, a.act, m, s->tmp.data(), pool);  // [m, dim]
  ForRows(m, pool, [&](int t) {
    kernels::Add(&a.h[t * c.dim], &s->tmp[t * c.dim], c.dim, &a.out[t * c.dim]);
  });
}

// Runs the chunk's m rows (segments in row order) and advances each segment's cache; writes the
// logits of each segment's last n_out rows to `out`, segment after segment ([sum n_out, vocab]).
// With a tape, every row wants logits.
void ForwardChunk(const Model& model, std::span<const Segment> segs, int m, float* out, Scratch* s,
                  const Recorder& rec, ThreadPool* pool) {
  const LlamaConfig& c = model.config;
  RopeTables(model, segs, rec.Cos(c, s), rec.Sin(c, s));
  const auto embed = model.weights.tok_embeddings.mat();
  float* x0 = c.n_layers > 0 ? rec.Layer(c, 0, s).x : rec.XFinal(c, s);  // [m, dim]
  for (const Segment& g : segs) {
    for (int t = 0; t < g.n; ++t) kernels::GetRow(embed, g.tokens[t], &x0[(g.row0 + t) * c.dim]);
  }
  for (int layer = 0; layer < c.n_layers; ++layer) {
    const LayerActs a = rec.Layer(c, layer, s);
    AttentionBlock(model, layer, segs, m, a, s, rec, pool);
    FeedForwardBlock(model, layer, m, a, s, pool);
  }
  const float* x_final = rec.XFinal(c, s);
  float* xn_final = rec.XnFinal(c, s);
  float* final_scale = rec.tape ? rec.tape->final_scale.data() + rec.row0 : nullptr;
  int n_out = 0;
  for (const Segment& g : segs) {
    if (g.cache) g.cache->Advance(g.n);
    for (int t = g.n - g.n_out; t < g.n; ++t, ++n_out)
      Norm(model, &x_final[(g.row0 + t) * c.dim], model.weights.norm, &xn_final[n_out * c.dim],
           final_scale ? &final_scale[n_out] : nullptr);
  }
  if (n_out == 0) return;
  CHECK(!rec.tape || n_out == m);
  if (out) Project(model, model.weights.output, xn_final, n_out, out, pool);  // [n_out, vocab]
}

// One sequence of a pass and the logits it wants.
enum class Want { kNone, kLast, kAll };
struct Job {
  std::span<const int> tokens;
  KVCache* cache = nullptr;
  Want want = Want::kNone;
};

// Runs validated jobs: their rows in order, kChunk at a time (a job's tokens may span chunks).
// Logits rows go to `logits` in row order. A tape (sized for all rows) records the activations.
void Run(const Model& model, std::span<const Job> jobs, float* logits, ThreadPool* pool,
         ForwardTape* tape = nullptr) {
  const LlamaConfig& c = model.config;
  int64_t rows = 0;
  for (const Job& j : jobs) rows += static_cast<int64_t>(j.tokens.size());
  if (rows == 0) return;
  // Numerics::kGgml runs llama.cpp's physical batches (n_ubatch 512), whose size decides which of
  // its attention products runs (a 1-token batch takes the decode path).
  // Training (a tape) runs all rows as one chunk: each product is then one parallel region over
  // the whole batch. Results do not depend on the chunking (rows are independent).
  const int chunk = model.numerics == Numerics::kGgml ? kGgmlChunk
                    : tape                            ? static_cast<int>(rows)
                                                      : kChunk;
  Scratch& s = ThreadScratch();
  s.Reserve(c, static_cast<int>(std::min<int64_t>(chunk, rows)));
  std::vector<Segment>& segs = s.segs;
  segs.clear();
  int m = 0, n_out = 0;
  int64_t rows_done = 0;
  auto flush = [&] {
    ForwardChunk(model, segs, m, logits, &s, Recorder{tape, rows_done}, pool);
    if (logits) logits += static_cast<size_t>(n_out) * c.vocab_size;
    rows_done += m;
    segs.clear();
    m = 0, n_out = 0;
  };
  for (const Job& j : jobs) {
    const int n = static_cast<int>(j.tokens.size());
    for (int done = 0; done < n;) {
      if (m == chunk) flush();
      const int take = std::min(chunk - m, n - done);
      const bool last = done + take == n;
      const int want = j.want == Want::kAll ? take : (j.want == Want::kLast && last ? 1 : 0);
      // Earlier chunks of this job have run and advanced the cache. Without a cache (a training
      // forward) the job runs whole from position 0 in one chunk.
      CHECK(j.cache || take == n);
      segs.push_back(
          {j.cache, j.tokens.data() + done, m, take, j.cache ? j.cache->size() : 0, want});
      m += take, n_out += want, done += take;
    }
  }
  if (m > 0) flush();
}

// Forward's errors for one sequence.
Status CheckTokens(const LlamaConfig& c, std::span<const int> tokens) {
  const int n = static_cast<int>(tokens.size());
  if (n == 0) return Status::Error("no tokens to run");
  for (int i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
      return Status::Errorf("token {} (at index {}) is out of range: the vocabulary has {} tokens",
                            tokens[i], i, c.vocab_size);
  }
  return Status::Ok();
}
Status Check(const LlamaConfig& c, std::span<const int> tokens, const KVCache& cache) {
  HERD_RETURN_IF_ERROR(CheckTokens(c, tokens));
  const int n = static_cast<int>(tokens.size());
  if (static_cast<int64_t>(cache.size()) + n > cache.capacity())
    return Status::Errorf(
        "context full: {} positions in use + {} new tokens exceed the context of {} positions",
        cache.size(), n, cache.capacity());
  return Status::Ok();
}

}  // namespace

Status Forward(const Model& model, std::span<const int> tokens, KVCache* cache, bool all_logits,
               std::vector<float>* logits, ThreadPool* pool) {
  const LlamaConfig& c = model.config;
  HERD_RETURN_IF_ERROR(Check(c, tokens, *cache));
  logits->resize(static_cast<size_t>(all_logits ? tokens.size() : 1) * c.vocab_size);
  const Job job{tokens, cache, all_logits ? Want::kAll : Want::kLast};
  Run(model, {&job, 1}, logits->data(), pool);
  return Status::Ok();
}

Status ForwardBatch(const Model& model, std::span<const BatchSeq> seqs, std::vector<float>* logits,
                    ThreadPool* pool) {
  const LlamaConfig& c = model.config;
  size_t n_want = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i].cache == nullptr) return Status::Errorf("sequence {}: no KV cache", i);
    if (Status st = Check(c, seqs[i].tokens, *seqs[i].cache); !st.ok())
      return Status::Errorf("sequence {}: {}", i, st.message());
    for (size_t j = 0; j < i; ++j) {
      if (seqs[j].cache == seqs[i].cache)
        return Status::Errorf("sequences {} and {} share a KV cache", j, i);
    }
    n_want += seqs[i].want_logits ? 1 : 0;
  }
  logits->resize(n_want * c.vocab_size);
  std::vector<Job> jobs;
  jobs.reserve(seqs.size());
  for (const BatchSeq& q : seqs)
    jobs.push_back({q.tokens, q.cache, q.want_logits ? Want::kLast : Want::kNone});
  Run(model, jobs, logits->data(), pool);
  return Status::Ok();
}

Status ForwardRecord(const Model& model, std::span<const std::span<const int>> seqs,
                     ForwardTape* tape, ThreadPool* pool) {
  const LlamaConfig& c = model.config;
  std::vector<Job> jobs;
  int64_t rows = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (Status st = CheckTokens(c, seqs[i]); !st.ok())
      return Status::Errorf("sequence {}: {}", i, st.message());
    rows += static_cast<int64_t>(seqs[i].size());
    // No cache: attention reads the tape's keys and values (TrainingAttention).
    jobs.push_back({seqs[i], nullptr, Want::kAll});
  }
  const int64_t q_dim = int64_t{c.n_heads} * c.head_dim, kv = int64_t{c.n_kv_heads} * c.head_dim;
  auto size = [rows](AlignedFloats& v, int64_t width) { v.resize(rows * width); };
  tape->rows = rows;
  tape->layers.resize(c.n_layers);
  for (LayerTape& l : tape->layers) {
    size(l.x, c.dim), size(l.xn_attn, c.dim), size(l.q, q_dim), size(l.k, kv), size(l.v, kv);
    size(l.att, q_dim), size(l.h, c.dim), size(l.xn_ffn, c.dim);
    size(l.gate, c.ffn_dim), size(l.up, c.ffn_dim), size(l.act, c.ffn_dim);
    size(l.attn_scale, 1), size(l.ffn_scale, 1);
  }
  size(tape->x_final, c.dim), size(tape->xn_final, c.dim), size(tape->final_scale, 1);
  size(tape->cos, c.head_dim / 2), size(tape->sin, c.head_dim / 2);
  Run(model, jobs, /*logits=*/nullptr, pool, tape);
  return Status::Ok();
}

void OutputLogits(const Model& model, const float* xn, int rows, float* logits, ThreadPool* pool) {
  Project(model, model.weights.output, xn, rows, logits, pool);
}

}  // namespace herd
