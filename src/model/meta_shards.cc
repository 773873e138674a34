// Meta's model-parallel checkpoints: consolidated.00.pth .. consolidated.NN.pth each hold a slice
// of every parallel layer (fairscale's ColumnParallelLinear splits the output dimension, dim 0;
// RowParallelLinear the input dimension, dim 1; Llama 3's VocabParallelEmbedding splits the
// vocabulary, dim 0). Norms are replicated in every shard.
#include <cstring>

#include "model/load.h"

namespace herd {
int MetaSplitDim(TensorRole role) {
  switch (role) {
    case TensorRole::kTokEmbedding:
    case TensorRole::kOutput:
    case TensorRole::kWq:
    case TensorRole::kWk:
    case TensorRole::kWv:
    case TensorRole::kW1:
    case TensorRole::kW3:
      return 0;
    case TensorRole::kWo:
    case TensorRole::kW2:
      return 1;
    default:
      return -1;
  }
}

namespace {

int SplitDim(std::string_view name) {
  auto id = ParseTensorName(NamingScheme::kMeta, name);
  return id ? MetaSplitDim(id->role) : -1;
}

}  // namespace

Result<TensorIndex> MergeMetaShards(std::vector<TensorIndex> shards) {
  TensorIndex merged;
  const size_t n = shards.size();
  for (size_t s = 0; s < n; ++s) {
    if (shards[s].size() == 0) return Status::Errorf("model-parallel shard {} holds no tensors", s);
  }
  for (const TensorEntry& first : shards[0].entries()) {
    std::vector<const TensorEntry*> parts;
    for (size_t s = 0; s < n; ++s) {
      const TensorEntry* e = shards[s].Find(first.name);
      if (!e)
        return Status::Errorf("shard {}: tensor '{}' is in {} but missing from this shard", s,
                              first.name, first.file);
      if (e->dtype != first.dtype || e->shape.size() != first.shape.size())
        return Status::Errorf(
            "{}: tensor '{}' is {} with {} dims in this shard but {} with {} in {}", e->file,
            first.name, Name(e->dtype), e->shape.size(), Name(first.dtype), first.shape.size(),
            first.file);
      parts.push_back(e);
    }
    const int dim = SplitDim(first.name);
    TensorEntry out = first;
    if (dim < 0 || first.shape.size() != 2) {
      for (const TensorEntry* e : parts) {
        if (e->shape != first.shape || e->n_bytes != first.n_bytes ||
            std::memcmp(e->data, first.data, first.n_bytes) != 0)
          return Status::Errorf("{}: replicated tensor '{}' differs from {}", e->file, first.name,
                                first.file);
      }
      HERD_RETURN_IF_ERROR(merged.Add(std::move(out)));
      continue;
    }
    const int keep = 1 - dim;
    for (const TensorEntry* e : parts) {
      if (e->shape[keep] != first.shape[keep])
        return Status::Errorf(
            "{}: tensor '{}' has shape [{}, {}], which does not stack with [{}, "
            "{}] from {} along dim {}",
            e->file, first.name, e->shape[0], e->shape[1], first.shape[0], first.shape[1],
            first.file, dim);
    }
    auto bytes = std::make_shared<std::vector<uint8_t>>();
    out.shape[dim] = 0;
    for (const TensorEntry* e : parts) out.shape[dim] += e->shape[dim];
    if (dim == 0) {  // stack the row blocks
      for (const TensorEntry* e : parts) bytes->insert(bytes->end(), e->data, e->data + e->n_bytes);
    } else {  // interleave: each output row is the concatenation of the shards' rows
      const int64_t rows = first.shape[0];
      for (int64_t r = 0; r < rows; ++r) {
        for (const TensorEntry* e : parts) {
          const uint64_t row_bytes = e->n_bytes / rows;
          if (row_bytes * rows != e->n_bytes)
            return Status::Errorf("{}: tensor '{}' rows do not split evenly into bytes", e->file,
                                  first.name);
          bytes->insert(bytes->end(), e->data + r * row_bytes, e->data + (r + 1) * row_bytes);
        }
      }
    }
    out.data = bytes->data();
    out.n_bytes = bytes->size();
    out.file = first.file + " (+" + std::to_string(n - 1) + " shards)";
    merged.Retain(bytes);
    HERD_RETURN_IF_ERROR(merged.Add(std::move(out)));
  }
  for (size_t s = 1; s < n; ++s) {
    if (shards[s].size() != shards[0].size())
      return Status::Errorf("{}: shard has {} tensors, {} has {}", shards[s].entries()[0].file,
                            shards[s].size(), shards[0].entries()[0].file, shards[0].size());
  }
  for (auto& s : shards) merged.Retain(std::make_shared<TensorIndex>(std::move(s)));
  return merged;
}

}  // namespace herd
