// Element types of tensors herd reads and computes on. Block-quantised GGUF types store
// `block_size` elements in `block_bytes` bytes; plain types have block_size 1.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace herd {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kF64,
  kI8,
  kI16,
  kI32,
  kI64,
  kU8,
  kBool,
  // GGUF block formats (ggml's layouts).
  kQ4_0,
  kQ4_1,
  kQ5_0,
  kQ5_1,
  kQ8_0,
  kQ4_K,
  kQ5_K,
  kQ6_K,
};

struct DTypeInfo {
  std::string_view name;  // "f32", "bf16", "q4_0", ...
  int block_size;         // elements per block
  int block_bytes;        // bytes per block
};

const DTypeInfo& Info(DType t);
inline std::string_view Name(DType t) { return Info(t).name; }
std::optional<DType> DTypeFromName(std::string_view name);
// Bytes of n elements (n must be a multiple of the block size; nullopt otherwise or on overflow).
std::optional<uint64_t> BytesFor(DType t, uint64_t n_elements);

}  // namespace herd
