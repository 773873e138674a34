// Helpers shared by the tests: where the Llama 3 tokenizer and the committed fixtures are.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/paths.h"

namespace herd::testing {

// Meta's tokenizer.model, installed by scripts/setup (HERD_LLAMA3_TOKENIZER overrides).
inline std::string Llama3TokenizerPath() {
  if (const char* p = std::getenv("HERD_LLAMA3_TOKENIZER"); p && *p) return p;
  return DefaultLlama3TokenizerPath();
}

inline std::string SourcePath(const std::string& rel) {
  return std::string(HERD_SOURCE_DIR) + "/" + rel;
}

// A committed tests/golden/NAME.xz, decompressed once into the build tree; returns its path.
inline std::string XzFixture(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path out = fs::path(HERD_BINARY_DIR) / "test_data" / fs::path(name).filename();
  if (!fs::exists(out)) {
    fs::create_directories(out.parent_path());
    // Tests run in parallel processes: each writes its own temporary, then renames it (atomic).
    const std::string tmp = out.string() + ".tmp." + std::to_string(::getpid());
    const std::string cmd =
        "xz -dc '" + SourcePath("tests/golden/" + name + ".xz") + "' > '" + tmp + "'";
    if (std::system(cmd.c_str()) != 0) return "";
    fs::rename(tmp, out);
  }
  return out.string();
}

}  // namespace herd::testing
