// Load-time self-check: the classic silent failures of Llama checkpoints, reported loudly.
//   * a Llama 3.2-shaped model (1B: dim 2048 x 16 layers, 3B: 3072 x 28, tied) whose llama3 RoPE
//     scaling factor is not 32 (Meta's reference code hard-codes 8);
//   * an eos list without <|eot_id|> although the vocabulary has it (instruct models end turns
//     with it; tools that stop only at eos run on);
//   * a tokenizer whose vocabulary does not fit the model's embedding;
//   * whatever the config / weights / tokenizer loaders flagged (missing pre-tokenizer type, an
//     output projection ignored because the config ties it, unused tensors, ...).
#pragma once

#include <string>
#include <vector>

#include "model/load.h"
#include "tokenizer/tokenizer.h"

namespace herd {

std::vector<std::string> SelfCheck(const Model& model, const Tokenizer* tokenizer);

}  // namespace herd
