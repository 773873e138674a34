#include "base/paths.h"

#include <cstdlib>

namespace herd {

std::string HerdHome() {
  if (const char* h = std::getenv("HERD_HOME"); h && *h) return h;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/herd";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/herd";
  return ".cache/herd";
}

std::string DefaultLlama3TokenizerPath() { return HerdHome() + "/llama3/tokenizer.model"; }

std::string DefaultModelPath() {
  if (const char* m = std::getenv("HERD_MODEL"); m && *m) return m;
  return HerdHome() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}

}  // namespace herd
