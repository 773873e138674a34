#include "model/weights.h"

#include <cstdlib>
#include <cstring>
#include <string_view>

#include "base/check.h"
#include "io/mapped_file.h"

namespace herd {

uint64_t LlamaWeights::TotalBytes() const {
  uint64_t total = 0;
  ForEachTensor(*this, [&](TensorId, const Weight& w) { total += w.n_bytes(); });
  return total;
}

uint64_t PackForInference(LlamaWeights* w, ThreadPool* pool) {
  const char* env = std::getenv("HERD_PACK");
  if (env && std::string_view(env) == "0") return 0;
  uint64_t packed = 0;
  ForEachTensor(*w, [&](TensorId, Weight& t) {
    if (t.shape.size() != 2 || t.packed || !kernels::CanPack(t.dtype)) return;
    t.packed = std::make_shared<const kernels::PackedMat>(kernels::Pack(t.mat(), pool));
    ReleaseMappedPages(t.data, t.n_bytes());
    packed += t.n_bytes();
  });
  if (w->tied) w->output.packed = w->tok_embeddings.packed;
  return packed;
}

std::vector<int64_t> ExpectedShape(const LlamaConfig& c, TensorRole role) {
  const int64_t q = int64_t{c.n_heads} * c.head_dim, kv = int64_t{c.n_kv_heads} * c.head_dim;
  switch (role) {
    case TensorRole::kTokEmbedding:
    case TensorRole::kOutput:
      return {c.vocab_size, c.dim};
    case TensorRole::kNorm:
    case TensorRole::kAttnNorm:
    case TensorRole::kFfnNorm:
      return {c.dim};
    case TensorRole::kRopeFreqs:
      return {c.head_dim / 2};
    case TensorRole::kWq:
      return {q, c.dim};
    case TensorRole::kWk:
    case TensorRole::kWv:
      return {kv, c.dim};
    case TensorRole::kWo:
      return {c.dim, q};
    case TensorRole::kW1:
    case TensorRole::kW3:
      return {c.ffn_dim, c.dim};
    case TensorRole::kW2:
      return {c.dim, c.ffn_dim};
  }
  return {};
}

namespace {

// dst row of (head, meta index m) <- src row, with m = 2i + p <-> hf index p * half + i.
std::vector<uint8_t> PermuteRows(const Weight& w, int n_heads, bool hf_to_meta) {
  const int64_t rows = w.rows();
  CHECK(n_heads > 0 && rows % n_heads == 0 && (rows / n_heads) % 2 == 0);
  const int64_t head_dim = rows / n_heads, half = head_dim / 2;
  const uint64_t row_bytes = w.n_bytes() / rows;
  std::vector<uint8_t> out(w.n_bytes());
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t p = 0; p < 2; ++p) {
        const int64_t meta = h * head_dim + 2 * i + p, hf = h * head_dim + p * half + i;
        const int64_t dst = hf_to_meta ? meta : hf, src = hf_to_meta ? hf : meta;
        std::memcpy(out.data() + dst * row_bytes, w.data + src * row_bytes, row_bytes);
      }
    }
  }
  return out;
}

}  // namespace

std::vector<uint8_t> PermuteRowsHfToMeta(const Weight& w, int n_heads) {
  return PermuteRows(w, n_heads, true);
}
std::vector<uint8_t> PermuteRowsMetaToHf(const Weight& w, int n_heads) {
  return PermuteRows(w, n_heads, false);
}

}  // namespace herd
