// Per-tensor dtype policy of `herd quantize`: llama.cpp's file types ("ftypes", llama-quantize's
// Q4_K_M, Q8_0, ...) for Llama models, reimplemented from the behaviour of llama.cpp's
// llama_tensor_get_type at 0c1e570 (the version bench/build_llamacpp.sh builds) without an
// importance matrix. For a file type with default dtype D:
//
//   * 1-D tensors (norms) stay f32; f32 / f16 / bf16 file types put every matrix in that dtype.
//   * output.weight, or token_embd.weight when the embeddings are tied (no output.weight): q8_0 if
//     its rows do not split into D's blocks, else D itself for q8_0, else q6_K (so q4_0, q4_1,
//     q5_0, q5_1 and every K type get a q6_K output).
//   * attn_v (layer i of n): q4_k_m / q5_k_m use q6_K where UseMoreBits(i, n); q4_k_s uses q5_K in
//     the first 4 layers. 70B-class models (80 layers with grouped-query attention) lift a q4_K
//     attn_v to q5_K.
//   * ffn_down: q4_k_m / q5_k_m use q6_K where UseMoreBits(i, n); q4_k_s uses q5_K for i < n / 8.
//   * everything else (token_embd when untied, attn_q/k/output, ffn_gate/up): D.
// Then a dtype whose block does not divide the row length falls back as llama.cpp's does:
// q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0, and a 32-block type that still does not fit -> f16.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/dtype.h"
#include "model/config.h"
#include "model/names.h"

namespace herd {

enum class QuantType {
  kF32,
  kF16,
  kBF16,
  kQ8_0,
  kQ4_0,
  kQ4_1,
  kQ5_0,
  kQ5_1,
  kQ4_K_S,
  kQ4_K_M,
  kQ5_K_S,
  kQ5_K_M,
  kQ6_K,
};

// "q4_k_m", "q8_0", "bf16", ... (lower case, as the --type flag takes them; upper case accepted).
std::string_view QuantTypeName(QuantType t);
std::optional<QuantType> QuantTypeFromName(std::string_view name);
std::vector<std::string> QuantTypeNames();

// llama.cpp's llama_ftype value, written as GGUF general.file_type (ALL_F32 0, MOSTLY_F16 1,
// Q4_0 2, Q4_1 3, Q8_0 7, Q5_0 8, Q5_1 9, Q4_K_S 14, Q4_K_M 15, Q5_K_S 16, Q5_K_M 17, Q6_K 18,
// BF16 32).
uint32_t LlamaFileType(QuantType t);
// The dtype most matrices get.
DType DefaultDType(QuantType t);

// llama.cpp's "use more bits" layers: the first and last eighth plus every third layer between.
bool UseMoreBits(int layer, int n_layers);

// `want`, or what llama.cpp falls back to when `want`'s block does not divide `cols`.
DType FallbackDType(DType want, int64_t cols);

// The dtype of tensor `id` with `shape` (PyTorch order, [rows, cols] or [n]) in a file of type
// `t` for a model with `config`; `tied`: the model has no separate output matrix.
DType TensorDType(QuantType t, const LlamaConfig& config, bool tied, TensorId id,
                  const std::vector<int64_t>& shape);

}  // namespace herd
