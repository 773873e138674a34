#pragma once

#include <string>

namespace herd {

// herd's cache directory: $HERD_HOME, else $XDG_CACHE_HOME/herd, else ~/.cache/herd. scripts/setup
// puts the files it fetches from registries here (e.g. llama3/tokenizer.model).
std::string HerdHome();
// The Llama 3 tokenizer.model that scripts/setup installs: HerdHome()/llama3/tokenizer.model.
std::string DefaultLlama3TokenizerPath();
// The model run / chat / serve use without --model: $HERD_MODEL, else the SmolLM2-135M-Instruct
// GGUF that scripts/setup installs (HerdHome()/models/SmolLM2-135M-Instruct.Q4_1.gguf).
std::string DefaultModelPath();

}  // namespace herd
