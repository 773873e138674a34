// LlamaConfig from HF config.json / Meta params.json / GGUF, presets, RoPE frequencies, the name
// table.
#include <gtest/gtest.h>

#include <cmath>

#include "io/gguf.h"
#include "model/config.h"
#include "model/names.h"
#include "test_util.h"

namespace herd {
namespace {

// Field values as published in meta-llama/Llama-3.2-1B-Instruct's config.json.
constexpr char kHf32_1b[] = R"({
  "architectures": ["LlamaForCausalLM"], "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
  "head_dim": 64, "hidden_size": 2048, "intermediate_size": 8192, "max_position_embeddings": 131072,
  "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16", "vocab_size": 128256})";

TEST(LlamaConfig, HfConfig) {
  auto c = ParseHfConfig(kHf32_1b, "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->dim, 2048);
  EXPECT_EQ(c->n_layers, 16);
  EXPECT_EQ(c->n_heads, 32);
  EXPECT_EQ(c->n_kv_heads, 8);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->ffn_dim, 8192);
  EXPECT_TRUE(c->tie_word_embeddings);
  ASSERT_TRUE(c->rope_scaling.has_value());
  EXPECT_EQ(c->rope_scaling->factor, 32.0);
  EXPECT_EQ(c->eos_ids, (std::vector<int>{128001, 128008, 128009}));
  auto preset = PresetConfig("llama3.2-1b");
  ASSERT_TRUE(preset.ok());
  EXPECT_EQ(preset->Describe(), c->Describe());
}

TEST(LlamaConfig, MetaParams) {
  // Llama 3.1 8B's params.json: FFN width from multiple_of and ffn_dim_multiplier.
  auto c = ParseMetaParams(R"({"dim": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": 8,
      "vocab_size": 128256, "ffn_dim_multiplier": 1.3, "multiple_of": 1024, "norm_eps": 1e-05,
      "rope_theta": 500000.0, "use_scaled_rope": true})",
                           "params.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->ffn_dim, 14336);
  ASSERT_TRUE(c->rope_scaling.has_value());
  EXPECT_EQ(c->rope_scaling->factor, 8.0);
  EXPECT_TRUE(c->warnings.empty());
  // Llama 3.2 1B's params.json says only use_scaled_rope: herd uses 32 and says so.
  auto c32 = ParseMetaParams(R"({"dim": 2048, "ffn_dim_multiplier": 1.5, "multiple_of": 256,
      "n_heads": 32, "n_kv_heads": 8, "n_layers": 16, "norm_eps": 1e-05, "rope_theta": 500000.0,
      "use_scaled_rope": true, "vocab_size": 128256})",
                             "params.json");
  ASSERT_TRUE(c32.ok()) << c32.status().message();
  EXPECT_EQ(c32->ffn_dim, 8192);
  EXPECT_EQ(c32->rope_scaling->factor, 32.0);
  ASSERT_EQ(c32->warnings.size(), 1u);
  // An explicit rope_scaling (as herd init writes) wins.
  auto explicit8 = ParseMetaParams(R"({"dim": 2048, "n_heads": 32, "n_kv_heads": 8, "n_layers": 16,
      "vocab_size": 128256, "ffn_dim": 8192, "use_scaled_rope": true,
      "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 8192}})",
                                   "params.json");
  ASSERT_TRUE(explicit8.ok()) << explicit8.status().message();
  EXPECT_EQ(explicit8->rope_scaling->factor, 8.0);
  EXPECT_TRUE(explicit8->warnings.empty());
}

TEST(LlamaConfig, Errors) {
  auto msg = [](Result<LlamaConfig> r) {
    return r.ok() ? std::string("ok") : r.status().message();
  };
  EXPECT_EQ(msg(ParseHfConfig("{", "c.json")), "c.json: invalid JSON at byte 2");
  EXPECT_EQ(msg(ParseHfConfig("[]", "c.json")), "c.json: expected a JSON object");
  EXPECT_EQ(msg(ParseHfConfig(R"({"hidden_size": 64})", "c.json")),
            "c.json: missing \"num_hidden_layers\"");
  EXPECT_EQ(msg(ParseHfConfig(R"({"hidden_size": "64"})", "c.json")),
            "c.json: \"hidden_size\" must be an integer, got \"64\"");
  EXPECT_EQ(
      msg(ParseHfConfig(R"({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 3, "intermediate_size": 8, "vocab_size": 10})",
                        "c.json")),
      "c.json: n_heads 4 is not a multiple of n_kv_heads 3");
  EXPECT_EQ(
      msg(ParseHfConfig(R"({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "intermediate_size": 8, "vocab_size": 10, "rope_scaling": {"rope_type": "yarn"}})",
                        "c.json")),
      "c.json: rope_scaling type \"yarn\" is not supported (llama3 only)");
  EXPECT_EQ(msg(ParseHfConfig(R"({"architectures": ["MistralForCausalLM"]})", "c.json")),
            "c.json: architecture \"MistralForCausalLM\" is not LlamaForCausalLM");
  EXPECT_EQ(msg(PresetConfig("llama9")),
            "unknown preset \"llama9\" (known: llama3-8b, llama3.1-8b, llama3.2-1b, llama3.2-3b, "
            "tiny, tiny-tied)");
  // A GGUF without llama.* keys (the tokenizer-only fixture).
  auto f = gguf::File::Open(testing::XzFixture("tokenizer/llama3-tokenizer.gguf"));
  ASSERT_TRUE(f.ok()) << f.status().message();
  auto g = ConfigFromGguf(*f);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("missing llama.embedding_length"), std::string::npos);
}

TEST(LlamaConfig, Presets) {
  for (const auto& name : PresetNames()) {
    auto c = PresetConfig(name);
    ASSERT_TRUE(c.ok()) << name;
    EXPECT_EQ(c->vocab_size, 128256);
  }
  auto tiny = *PresetConfig("tiny");
  EXPECT_EQ(tiny.dim, 64);
  EXPECT_EQ(tiny.n_layers, 2);
  EXPECT_EQ(tiny.n_heads, 4);
  EXPECT_EQ(tiny.n_kv_heads, 2);
  EXPECT_EQ(tiny.ffn_dim, 192);
  EXPECT_FALSE(tiny.tie_word_embeddings);
  EXPECT_TRUE(PresetConfig("tiny-tied")->tie_word_embeddings);
  EXPECT_EQ(PresetConfig("llama3.2-3b")->head_dim, 128);
}

TEST(RopeFrequencies, Llama3Scaling) {
  LlamaConfig c = *PresetConfig("llama3.1-8b");
  LlamaConfig plain = c;
  plain.rope_scaling.reset();
  const auto base = RopeInverseFrequencies(plain);
  const auto scaled = RopeInverseFrequencies(c);
  ASSERT_EQ(base.size(), 64u);
  EXPECT_DOUBLE_EQ(base[1], std::pow(500000.0, -2.0 / 128));
  for (size_t i = 0; i < base.size(); ++i) {
    const double wavelen = 2 * M_PI / base[i];
    if (wavelen < 8192.0 / 4)
      EXPECT_EQ(scaled[i], base[i]) << i;  // high frequency: kept
    else if (wavelen > 8192.0)
      EXPECT_DOUBLE_EQ(scaled[i], base[i] / 8) << i;  // low: divided by factor
    else
      EXPECT_TRUE(scaled[i] < base[i] && scaled[i] > base[i] / 8) << i;  // smooth in between
  }
  LlamaConfig c32 = c;
  c32.rope_scaling->factor = 32;
  const auto scaled32 = RopeInverseFrequencies(c32);
  EXPECT_DOUBLE_EQ(scaled32.back(), base.back() / 32);
  EXPECT_NE(scaled32.back(), scaled.back());
}

TEST(Names, RoundTripAllSchemes) {
  const TensorRole roles[] = {TensorRole::kTokEmbedding,
                              TensorRole::kNorm,
                              TensorRole::kOutput,
                              TensorRole::kRopeFreqs,
                              TensorRole::kAttnNorm,
                              TensorRole::kWq,
                              TensorRole::kWk,
                              TensorRole::kWv,
                              TensorRole::kWo,
                              TensorRole::kFfnNorm,
                              TensorRole::kW1,
                              TensorRole::kW2,
                              TensorRole::kW3};
  for (NamingScheme s : {NamingScheme::kHf, NamingScheme::kMeta, NamingScheme::kGguf}) {
    for (TensorRole role : roles) {
      for (int layer : {0, 7, 31}) {
        TensorId id{role, IsLayerRole(role) ? layer : -1};
        const std::string name = TensorName(s, id);
        if (name.empty()) {
          EXPECT_TRUE(role == TensorRole::kRopeFreqs && s != NamingScheme::kGguf);
          continue;
        }
        auto back = ParseTensorName(s, name);
        ASSERT_TRUE(back.has_value()) << name;
        EXPECT_EQ(*back, id) << name;
      }
    }
  }
  EXPECT_EQ(TensorName(NamingScheme::kHf, {TensorRole::kW1, 3}),
            "model.layers.3.mlp.gate_proj.weight");
  EXPECT_EQ(TensorName(NamingScheme::kMeta, {TensorRole::kW1, 3}),
            "layers.3.feed_forward.w1.weight");
  EXPECT_EQ(TensorName(NamingScheme::kGguf, {TensorRole::kWo, 3}), "blk.3.attn_output.weight");
  EXPECT_FALSE(ParseTensorName(NamingScheme::kHf, "model.layers.01.mlp.up_proj.weight"));
  EXPECT_FALSE(ParseTensorName(NamingScheme::kHf, "model.layers.x.mlp.up_proj.weight"));
  EXPECT_FALSE(ParseTensorName(NamingScheme::kMeta, "layers.1.attention.wq.bias"));
  EXPECT_EQ(DetectScheme({"norm.weight", "tok_embeddings.weight"}), NamingScheme::kMeta);
  EXPECT_EQ(DetectScheme({"token_embd.weight"}), NamingScheme::kGguf);
  EXPECT_FALSE(DetectScheme({"foo"}).has_value());
}

}  // namespace
}  // namespace herd
