// herd quantize's per-tensor dtype policy (llama.cpp's file-type mixes) on real Llama 3 shapes:
// 16 layers (3.2 1B, tied embeddings), 28 layers (3.2 3B, tied), 32 layers (3 8B, untied), an
// 80-layer GQA model (70B class) and the tiny test shape whose rows do not fit K-quant blocks.
#include "model/quant_policy.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "model/config.h"
#include "model/weights.h"

namespace herd {
namespace {

struct Mix {
  std::map<std::string, DType> type;  // GGUF tensor name -> dtype

  DType at(const std::string& name) const {
    auto it = type.find(name);
    EXPECT_NE(it, type.end()) << name;
    return it == type.end() ? DType::kF32 : it->second;
  }
  // The layers whose `role` tensor ("attn_v", "ffn_down", ...) has dtype `d`.
  std::set<int> Layers(const std::string& role, DType d, int n_layers) const {
    std::set<int> out;
    for (int i = 0; i < n_layers; ++i)
      if (at("blk." + std::to_string(i) + "." + role + ".weight") == d) out.insert(i);
    return out;
  }
  std::map<DType, int> Counts() const {
    std::map<DType, int> n;
    for (const auto& [name, d] : type) ++n[d];
    return n;
  }
};

// Every tensor of a model with `c` as SaveModel writes it (no output.weight when tied).
Mix PlanFor(QuantType t, const LlamaConfig& c) {
  Mix mix;
  const bool tied = c.tie_word_embeddings;
  auto add = [&](TensorId id) {
    const auto shape = ExpectedShape(c, id.role);
    mix.type[TensorName(NamingScheme::kGguf, id)] = TensorDType(t, c, tied, id, shape);
  };
  add({TensorRole::kTokEmbedding});
  for (int i = 0; i < c.n_layers; ++i)
    for (TensorRole r :
         {TensorRole::kAttnNorm, TensorRole::kWq, TensorRole::kWk, TensorRole::kWv, TensorRole::kWo,
          TensorRole::kFfnNorm, TensorRole::kW1, TensorRole::kW2, TensorRole::kW3})
      add({r, i});
  add({TensorRole::kNorm});
  if (!tied) add({TensorRole::kOutput});
  return mix;
}

LlamaConfig Preset(const char* name) {
  auto c = PresetConfig(name);
  EXPECT_TRUE(c.ok()) << name;
  return *c;
}

std::set<int> AllLayers(int n) {
  std::set<int> s;
  for (int i = 0; i < n; ++i) s.insert(i);
  return s;
}

std::set<int> Minus(std::set<int> a, const std::set<int>& b) {
  for (int x : b) a.erase(x);
  return a;
}

// llama.cpp's use_more_bits layers, written out by hand: the first and last eighth (n / 8 and
// n - 7n/8 layers) and every third layer after the first eighth, starting at its third.
const std::set<int> kMoreBits16 = {0, 1, 4, 7, 10, 13, 14, 15};
const std::set<int> kMoreBits28 = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27};

TEST(QuantPolicy, UseMoreBits) {
  for (auto [n, want] : {std::pair{16, kMoreBits16}, std::pair{28, kMoreBits28}}) {
    std::set<int> got;
    for (int i = 0; i < n; ++i)
      if (UseMoreBits(i, n)) got.insert(i);
    EXPECT_EQ(got, want) << n << " layers";
  }
  int n32 = 0;
  for (int i = 0; i < 32; ++i) n32 += UseMoreBits(i, 32);
  EXPECT_EQ(n32, 16);  // about half, as for 16 (8) and 28 (14)
}

TEST(QuantPolicy, Q4_K_M_16And28Layers) {
  for (auto [preset, more] :
       {std::pair{"llama3.2-1b", kMoreBits16}, std::pair{"llama3.2-3b", kMoreBits28}}) {
    SCOPED_TRACE(preset);
    const LlamaConfig c = Preset(preset);
    const Mix mix = PlanFor(QuantType::kQ4_K_M, c);
    const int n = c.n_layers;
    // Tied: token_embd is the output matrix, so it gets the output's q6_K.
    EXPECT_EQ(mix.at("token_embd.weight"), DType::kQ6_K);
    EXPECT_EQ(mix.type.count("output.weight"), 0u);
    EXPECT_EQ(mix.at("output_norm.weight"), DType::kF32);
    EXPECT_EQ(mix.Layers("attn_v", DType::kQ6_K, n), more);
    EXPECT_EQ(mix.Layers("attn_v", DType::kQ4_K, n), Minus(AllLayers(n), more));
    EXPECT_EQ(mix.Layers("ffn_down", DType::kQ6_K, n), more);
    EXPECT_EQ(mix.Layers("ffn_down", DType::kQ4_K, n), Minus(AllLayers(n), more));
    for (const char* role : {"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"})
      EXPECT_EQ(mix.Layers(role, DType::kQ4_K, n), AllLayers(n)) << role;
    for (const char* role : {"attn_norm", "ffn_norm"})
      EXPECT_EQ(mix.Layers(role, DType::kF32, n), AllLayers(n)) << role;
    const auto counts = mix.Counts();
    EXPECT_EQ(counts.at(DType::kQ6_K), 1 + 2 * static_cast<int>(more.size()));
    EXPECT_EQ(counts.at(DType::kQ4_K), 7 * n - 2 * static_cast<int>(more.size()));
    EXPECT_EQ(counts.at(DType::kF32), 2 * n + 1);
    EXPECT_EQ(counts.size(), 3u);
  }
}

TEST(QuantPolicy, Q5_K_M_16And28Layers) {
  for (auto [preset, more] :
       {std::pair{"llama3.2-1b", kMoreBits16}, std::pair{"llama3.2-3b", kMoreBits28}}) {
    SCOPED_TRACE(preset);
    const LlamaConfig c = Preset(preset);
    const Mix mix = PlanFor(QuantType::kQ5_K_M, c);
    const int n = c.n_layers;
    EXPECT_EQ(mix.at("token_embd.weight"), DType::kQ6_K);
    for (const char* role : {"attn_v", "ffn_down"}) {
      EXPECT_EQ(mix.Layers(role, DType::kQ6_K, n), more) << role;
      EXPECT_EQ(mix.Layers(role, DType::kQ5_K, n), Minus(AllLayers(n), more)) << role;
    }
    for (const char* role : {"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"})
      EXPECT_EQ(mix.Layers(role, DType::kQ5_K, n), AllLayers(n)) << role;
  }
}

TEST(QuantPolicy, Q4_K_S_16And28Layers) {
  for (auto [preset, down_q5] : {std::pair{"llama3.2-1b", std::set<int>{0, 1}},
                                 std::pair{"llama3.2-3b", std::set<int>{0, 1, 2}}}) {
    SCOPED_TRACE(preset);
    const LlamaConfig c = Preset(preset);
    const Mix mix = PlanFor(QuantType::kQ4_K_S, c);
    const int n = c.n_layers;
    EXPECT_EQ(mix.at("token_embd.weight"), DType::kQ6_K);
    EXPECT_EQ(mix.Layers("attn_v", DType::kQ5_K, n), (std::set<int>{0, 1, 2, 3}));
    EXPECT_EQ(mix.Layers("ffn_down", DType::kQ5_K, n), down_q5);  // the first eighth
    const auto counts = mix.Counts();
    EXPECT_EQ(counts.at(DType::kQ5_K), 4 + static_cast<int>(down_q5.size()));
    EXPECT_EQ(counts.at(DType::kQ6_K), 1);
    EXPECT_EQ(counts.at(DType::kQ4_K), 7 * n - 4 - static_cast<int>(down_q5.size()));
  }
}

TEST(QuantPolicy, UniformKTypes) {
  const LlamaConfig c = Preset("llama3.2-1b");
  for (auto [t, d] :
       {std::pair{QuantType::kQ5_K_S, DType::kQ5_K}, std::pair{QuantType::kQ6_K, DType::kQ6_K}}) {
    const Mix mix = PlanFor(t, c);
    const auto counts = mix.Counts();
    EXPECT_EQ(mix.at("token_embd.weight"), DType::kQ6_K);
    EXPECT_EQ(counts.at(d), d == DType::kQ6_K ? 7 * 16 + 1 : 7 * 16);
    EXPECT_EQ(counts.at(DType::kF32), 33);
  }
}

TEST(QuantPolicy, LegacyTypesGiveTheOutputQ6_K) {
  for (const char* preset : {"llama3.2-1b", "llama3-8b"}) {
    SCOPED_TRACE(preset);
    const LlamaConfig c = Preset(preset);
    const bool tied = c.tie_word_embeddings;
    const std::string out = tied ? "token_embd.weight" : "output.weight";
    for (auto [t, d] :
         {std::pair{QuantType::kQ4_0, DType::kQ4_0}, std::pair{QuantType::kQ4_1, DType::kQ4_1},
          std::pair{QuantType::kQ5_0, DType::kQ5_0}, std::pair{QuantType::kQ5_1, DType::kQ5_1},
          std::pair{QuantType::kQ8_0, DType::kQ8_0}}) {
      const Mix mix = PlanFor(t, c);
      // q8_0 keeps its own type for the output; the 4- and 5-bit types lift it to q6_K.
      EXPECT_EQ(mix.at(out), t == QuantType::kQ8_0 ? DType::kQ8_0 : DType::kQ6_K) << Name(d);
      if (!tied) {
        EXPECT_EQ(mix.at("token_embd.weight"), d);
      }
      const auto counts = mix.Counts();
      EXPECT_EQ(counts.at(d), 7 * c.n_layers + (tied ? 0 : 1) + (t == QuantType::kQ8_0 ? 1 : 0));
      EXPECT_EQ(counts.at(DType::kF32), 2 * c.n_layers + 1);
    }
  }
}

TEST(QuantPolicy, FloatTypesConvertEveryMatrix) {
  const LlamaConfig c = Preset("llama3-8b");
  for (auto [t, d] :
       {std::pair{QuantType::kF16, DType::kF16}, std::pair{QuantType::kBF16, DType::kBF16},
        std::pair{QuantType::kF32, DType::kF32}}) {
    const auto counts = PlanFor(t, c).Counts();
    if (d == DType::kF32) {
      EXPECT_EQ(counts.at(d), 9 * 32 + 3);
    } else {
      EXPECT_EQ(counts.at(d), 7 * 32 + 2);
      EXPECT_EQ(counts.at(DType::kF32), 2 * 32 + 1);
    }
  }
}

TEST(QuantPolicy, SeventyBClassLiftsAttnV) {
  LlamaConfig c = Preset("llama3-8b");
  c.n_layers = 80;  // 70B: 80 layers, 64 heads, 8 kv heads
  const Mix m = PlanFor(QuantType::kQ4_K_M, c);
  std::set<int> more;
  for (int i = 0; i < 80; ++i)
    if (UseMoreBits(i, 80)) more.insert(i);
  EXPECT_EQ(m.Layers("attn_v", DType::kQ6_K, 80), more);
  EXPECT_EQ(m.Layers("attn_v", DType::kQ5_K, 80), Minus(AllLayers(80), more));
  EXPECT_EQ(m.Layers("ffn_down", DType::kQ4_K, 80), Minus(AllLayers(80), more));
  const Mix s = PlanFor(QuantType::kQ4_K_S, c);
  EXPECT_EQ(s.Layers("attn_v", DType::kQ5_K, 80), AllLayers(80));
  c.n_kv_heads = c.n_heads;  // 65B-style (no GQA): no lift
  EXPECT_EQ(PlanFor(QuantType::kQ4_K_M, c).Layers("attn_v", DType::kQ4_K, 80),
            Minus(AllLayers(80), more));
}

TEST(QuantPolicy, FallbackForRowsThatDoNotFitTheBlocks) {
  EXPECT_EQ(FallbackDType(DType::kQ4_K, 256), DType::kQ4_K);
  EXPECT_EQ(FallbackDType(DType::kQ4_K, 192), DType::kQ5_0);
  EXPECT_EQ(FallbackDType(DType::kQ5_K, 64), DType::kQ5_1);
  EXPECT_EQ(FallbackDType(DType::kQ6_K, 64), DType::kQ8_0);
  EXPECT_EQ(FallbackDType(DType::kQ6_K, 48), DType::kF16);
  EXPECT_EQ(FallbackDType(DType::kQ4_0, 48), DType::kF16);
  EXPECT_EQ(FallbackDType(DType::kQ8_0, 96), DType::kQ8_0);
  EXPECT_EQ(FallbackDType(DType::kF16, 7), DType::kF16);

  // The tiny shape: dim 64, ffn 192, 2 layers (UseMoreBits: layer 1 only).
  for (const char* preset : {"tiny", "tiny-tied"}) {
    SCOPED_TRACE(preset);
    const LlamaConfig c = Preset(preset);
    const bool tied = c.tie_word_embeddings;
    const Mix km = PlanFor(QuantType::kQ4_K_M, c);
    // The output's rows (64) do not fit q4_K's 256: llama.cpp picks q8_0 for it directly.
    EXPECT_EQ(km.at(tied ? "token_embd.weight" : "output.weight"), DType::kQ8_0);
    if (!tied) {
      EXPECT_EQ(km.at("token_embd.weight"), DType::kQ5_0);
    }
    EXPECT_EQ(km.at("blk.0.attn_q.weight"), DType::kQ5_0);
    EXPECT_EQ(km.at("blk.0.attn_v.weight"), DType::kQ5_0);
    EXPECT_EQ(km.at("blk.1.attn_v.weight"), DType::kQ8_0);    // q6_K -> q8_0
    EXPECT_EQ(km.at("blk.0.ffn_down.weight"), DType::kQ5_0);  // rows of 192
    EXPECT_EQ(km.at("blk.1.ffn_down.weight"), DType::kQ8_0);
    const Mix k5 = PlanFor(QuantType::kQ5_K_M, c);
    EXPECT_EQ(k5.at("blk.0.ffn_up.weight"), DType::kQ5_1);
    EXPECT_EQ(k5.at("blk.1.ffn_down.weight"), DType::kQ8_0);
    const Mix q40 = PlanFor(QuantType::kQ4_0, c);
    EXPECT_EQ(q40.at("blk.0.ffn_down.weight"), DType::kQ4_0);  // 192 = 6 blocks of 32
    // q6_K wanted for the output, but 64 is no multiple of 256: q8_0.
    EXPECT_EQ(q40.at(tied ? "token_embd.weight" : "output.weight"), DType::kQ8_0);
  }
}

TEST(QuantPolicy, NamesAndFileTypes) {
  const std::map<std::string, uint32_t> want = {
      {"f32", 0},     {"f16", 1},   {"q4_0", 2},    {"q4_1", 3},    {"q8_0", 7},
      {"q5_0", 8},    {"q5_1", 9},  {"q4_k_s", 14}, {"q4_k_m", 15}, {"q5_k_s", 16},
      {"q5_k_m", 17}, {"q6_k", 18}, {"bf16", 32}};
  EXPECT_EQ(QuantTypeNames().size(), want.size());
  for (const auto& name : QuantTypeNames()) {
    auto t = QuantTypeFromName(name);
    ASSERT_TRUE(t.has_value()) << name;
    EXPECT_EQ(QuantTypeName(*t), name);
    EXPECT_EQ(LlamaFileType(*t), want.at(name)) << name;
  }
  EXPECT_EQ(QuantTypeFromName("Q4_K_M"), QuantType::kQ4_K_M);
  EXPECT_FALSE(QuantTypeFromName("q4_k").has_value());
  EXPECT_FALSE(QuantTypeFromName("q3_k_m").has_value());
  EXPECT_FALSE(QuantTypeFromName("").has_value());
}

}  // namespace
}  // namespace herd
