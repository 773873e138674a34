#include "base/dtype.h"

#include <array>

namespace herd {

namespace {
// Indexed by DType. Block layouts: ggml's (Q4_0: f16 scale + 16 bytes of nibbles per 32; Q8_0: f16
// scale + 32 int8; K-quants: 256-element super-blocks).
constexpr std::array<DTypeInfo, 18> kInfo = {{
    {"f32", 1, 4},
    {"f16", 1, 2},
    {"bf16", 1, 2},
    {"f64", 1, 8},
    {"i8", 1, 1},
    {"i16", 1, 2},
    {"i32", 1, 4},
    {"i64", 1, 8},
    {"u8", 1, 1},
    {"bool", 1, 1},
    {"q4_0", 32, 18},
    {"q4_1", 32, 20},
    {"q5_0", 32, 22},
    {"q5_1", 32, 24},
    {"q8_0", 32, 34},
    {"q4_k", 256, 144},
    {"q5_k", 256, 176},
    {"q6_k", 256, 210},
}};
}  // namespace

const DTypeInfo& Info(DType t) { return kInfo[static_cast<size_t>(t)]; }

std::optional<DType> DTypeFromName(std::string_view name) {
  for (size_t i = 0; i < kInfo.size(); ++i)
    if (kInfo[i].name == name) return static_cast<DType>(i);
  return std::nullopt;
}

std::optional<uint64_t> BytesFor(DType t, uint64_t n) {
  const DTypeInfo& info = Info(t);
  if (n % info.block_size != 0) return std::nullopt;
  const uint64_t blocks = n / info.block_size;
  if (blocks > UINT64_MAX / info.block_bytes) return std::nullopt;
  return blocks * info.block_bytes;
}

}  // namespace herd
