#include "model/self_check.h"

#include <fmt/format.h>

#include <algorithm>

namespace herd {

std::vector<std::string> SelfCheck(const Model& model, const Tokenizer* tok) {
  std::vector<std::string> out = model.warnings;
  const LlamaConfig& c = model.config;
  const std::string& where = model.files.root;
  const bool is32 = (c.dim == 2048 && c.n_layers == 16) || (c.dim == 3072 && c.n_layers == 28);
  if (is32 && c.vocab_size == 128256 && c.tie_word_embeddings) {
    if (!c.rope_scaling) {
      out.push_back(where +
                    ": Llama 3.2-shaped model without llama3 RoPE scaling; Llama 3.2 uses "
                    "factor 32, so long prompts will be wrong");
    } else if (c.rope_scaling->factor != 32) {
      out.push_back(fmt::format(
          "{}: Llama 3.2-shaped model with RoPE scaling factor {}; Llama 3.2 "
          "uses 32 (8 is Llama 3.1's), so positions past {} will be wrong",
          where, c.rope_scaling->factor, c.rope_scaling->original_max_position_embeddings / 8));
    }
  }
  if (tok) {
    for (const std::string& w : tok->warnings()) out.push_back(w);
    if (tok->vocab_size() > c.vocab_size)
      out.push_back(
          fmt::format("{}: the tokenizer has {} tokens but the model's embedding only {}; "
                      "ids past it cannot be run",
                      tok->source(), tok->vocab_size(), c.vocab_size));
    const auto eot = tok->SpecialId("<|eot_id|>");
    if (eot && !model.chat_template.empty() &&
        std::find(c.eos_ids.begin(), c.eos_ids.end(), *eot) == c.eos_ids.end())
      out.push_back(fmt::format(
          "{}: an instruct model (it has a chat template) whose eos ids do not include <|eot_id|> "
          "({}); its turns end with it, so tools that stop only at eos run on (herd stops there "
          "anyway)",
          where, *eot));
  }
  return out;
}

}  // namespace herd
