#include "io/gguf_index.h"

#include "io/gguf_writer.h"

namespace herd {

std::optional<DType> DTypeFromGgml(uint32_t ggml_type) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0,
                  DType::kQ5_1, DType::kQ8_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    if (*gguf::GgmlTypeOf(t) == ggml_type) return t;
  }
  return std::nullopt;
}

Result<TensorIndex> GgufTensorIndex(std::shared_ptr<const gguf::File> file) {
  TensorIndex index;
  for (const gguf::TensorInfo& t : file->tensors()) {
    const auto dtype = DTypeFromGgml(t.ggml_type);
    if (!dtype) {
      const gguf::GgmlTypeInfo* info = gguf::FindGgmlType(t.ggml_type);
      return Status::Errorf("{}: tensor '{}' has ggml type {} ({}), which herd does not support",
                            file->path(), t.name, t.ggml_type, info ? info->name : "unknown");
    }
    TensorEntry e;
    e.name = std::string(t.name);
    e.dtype = *dtype;
    e.shape.assign(t.dims.rbegin(), t.dims.rend());
    e.data = t.data;
    e.n_bytes = t.n_bytes;
    e.file = file->path();
    HERD_RETURN_IF_ERROR(index.Add(std::move(e)));
  }
  index.Retain(std::move(file));
  return index;
}

}  // namespace herd
