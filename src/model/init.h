// Random initialisation of a Llama model for `herd init` and training from scratch: every matrix
// and the embedding ~ N(0, 0.02^2), norms = 1. Deterministic in the seed and independent of the
// thread count: each row of each tensor draws from its own stream, seeded by (seed, tensor, row).
#pragma once

#include <cstdint>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/config.h"
#include "model/weights.h"

namespace herd {

// Matrices are stored in `dtype` (f32, f16, bf16, q8_0, q4_0); norms in f32.
Result<LlamaWeights> InitRandomWeights(const LlamaConfig& config, DType dtype, uint64_t seed,
                                       ThreadPool* pool);

}  // namespace herd
