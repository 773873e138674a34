// The tiny random Llama 3 model (preset "tiny", f32 weights, seed 2) with Meta's tokenizer, built
// once per test binary: what the generation and server tests run on.
#pragma once

#include <gtest/gtest.h>

#include "model/init.h"
#include "model/load.h"
#include "test_util.h"
#include "tokenizer/load.h"
#include "tokenizer/tokenizer.h"

namespace herd::testing {

struct TinyModel {
  Model model;
  Tokenizer tok;
};

inline const TinyModel& GetTinyModel() {
  static const TinyModel* f = [] {
    auto tok = LoadTokenizer(Llama3TokenizerPath());
    EXPECT_TRUE(tok.ok()) << tok.status().message();
    Model m;
    m.config = *PresetConfig("tiny");
    m.weights = *InitRandomWeights(m.config, DType::kF32, 2, nullptr);
    m.rope_inv_freq = RopeInverseFrequencies(m.config);
    return new TinyModel{std::move(m), std::move(tok).value()};
  }();
  return *f;
}

}  // namespace herd::testing
