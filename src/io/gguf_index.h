// GGUF tensors as a TensorIndex, so the model loader treats GGUF like safetensors and .pth.
// Shapes are reversed into PyTorch order (GGUF's dims[0] is the contiguous one); data points into
// the mapped file, which the index keeps alive.
#pragma once

#include <memory>
#include <optional>

#include "base/dtype.h"
#include "io/gguf.h"
#include "io/tensor_index.h"

namespace herd {

// The dtype of a ggml type id; nullopt for types herd does not know.
std::optional<DType> DTypeFromGgml(uint32_t ggml_type);

// Error naming the tensor when its ggml type is unknown to herd.
Result<TensorIndex> GgufTensorIndex(std::shared_ptr<const gguf::File> file);

}  // namespace herd
