#include "model/quant_policy.h"

#include <cctype>

namespace herd {
namespace {

struct QuantTypeInfo {
  QuantType type;
  std::string_view name;
  uint32_t llama_ftype;
  DType dtype;
};

constexpr QuantTypeInfo kTypes[] = {
    {QuantType::kQ8_0, "q8_0", 7, DType::kQ8_0},
    {QuantType::kQ4_0, "q4_0", 2, DType::kQ4_0},
    {QuantType::kQ4_1, "q4_1", 3, DType::kQ4_1},
    {QuantType::kQ5_0, "q5_0", 8, DType::kQ5_0},
    {QuantType::kQ5_1, "q5_1", 9, DType::kQ5_1},
    {QuantType::kQ4_K_M, "q4_k_m", 15, DType::kQ4_K},
    {QuantType::kQ4_K_S, "q4_k_s", 14, DType::kQ4_K},
    {QuantType::kQ5_K_M, "q5_k_m", 17, DType::kQ5_K},
    {QuantType::kQ5_K_S, "q5_k_s", 16, DType::kQ5_K},
    {QuantType::kQ6_K, "q6_k", 18, DType::kQ6_K},
    {QuantType::kBF16, "bf16", 32, DType::kBF16},
    {QuantType::kF16, "f16", 1, DType::kF16},
    {QuantType::kF32, "f32", 0, DType::kF32},
};

const QuantTypeInfo& Get(QuantType t) {
  for (const auto& info : kTypes)
    if (info.type == t) return info;
  return kTypes[0];  // unreachable: every enumerator is in the table
}

bool IsFloat(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

}  // namespace

std::string_view QuantTypeName(QuantType t) { return Get(t).name; }

std::optional<QuantType> QuantTypeFromName(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& info : kTypes)
    if (info.name == lower) return info.type;
  return std::nullopt;
}

std::vector<std::string> QuantTypeNames() {
  std::vector<std::string> names;
  for (const auto& info : kTypes) names.emplace_back(info.name);
  return names;
}

uint32_t LlamaFileType(QuantType t) { return Get(t).llama_ftype; }
DType DefaultDType(QuantType t) { return Get(t).dtype; }

bool UseMoreBits(int layer, int n_layers) {
  return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

DType FallbackDType(DType want, int64_t cols) {
  if (cols % Info(want).block_size == 0) return want;
  DType to = want;
  switch (want) {
    case DType::kQ4_K:
      to = DType::kQ5_0;
      break;
    case DType::kQ5_K:
      to = DType::kQ5_1;
      break;
    case DType::kQ6_K:
      to = DType::kQ8_0;
      break;
    default:
      break;
  }
  return cols % Info(to).block_size == 0 ? to : DType::kF16;
}

DType TensorDType(QuantType t, const LlamaConfig& c, bool tied, TensorId id,
                  const std::vector<int64_t>& shape) {
  if (shape.size() < 2) return DType::kF32;
  const DType base = DefaultDType(t);
  if (IsFloat(base)) return base;
  const int64_t cols = shape.back();
  const int layer = id.layer, n = c.n_layers;
  const bool k_m = t == QuantType::kQ4_K_M || t == QuantType::kQ5_K_M;
  DType to = base;
  if (id.role == TensorRole::kOutput || (tied && id.role == TensorRole::kTokEmbedding)) {
    if (cols % Info(base).block_size) {
      to = DType::kQ8_0;
    } else if (base != DType::kQ8_0) {
      to = DType::kQ6_K;
    }
  } else if (id.role == TensorRole::kWv) {
    if (k_m && UseMoreBits(layer, n)) {
      to = DType::kQ6_K;
    } else if (t == QuantType::kQ4_K_S && layer < 4) {
      to = DType::kQ5_K;
    }
    // llama.cpp's LLM_TYPE_70B (80 layers, grouped-query attention): attn_v is 8x smaller than
    // attn_q there, so a q4_K one gets q5_K for little size.
    if (n == 80 && c.n_heads != c.n_kv_heads && to == DType::kQ4_K) to = DType::kQ5_K;
  } else if (id.role == TensorRole::kW2) {
    if (k_m && UseMoreBits(layer, n)) {
      to = DType::kQ6_K;
    } else if (t == QuantType::kQ4_K_S && layer < n / 8) {
      to = DType::kQ5_K;
    }
  }
  return FallbackDType(to, cols);
}

}  // namespace herd
