// The model layer without files: random init, binding a TensorIndex (errors name the tensor),
// Meta shard merging, the RoPE row permutation, and Forward's KV-cache consistency.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "model/forward.h"
#include "model/init.h"
#include "model/load.h"
#include "model/save.h"
#include "model/self_check.h"
#include "test_util.h"
#include "tokenizer/load.h"

namespace herd {
namespace {

LlamaConfig Tiny(bool tied = false) {
  LlamaConfig c = *PresetConfig(tied ? "tiny-tied" : "tiny");
  c.vocab_size = 512;  // keeps the tests fast; shapes otherwise as the preset
  c.bos_id = 1, c.eos_ids = {2};
  return c;
}

Model MakeModel(const LlamaConfig& c, uint64_t seed = 1) {
  Model m;
  m.config = c;
  m.weights = *InitRandomWeights(c, DType::kF32, seed, nullptr);
  m.rope_inv_freq = RopeInverseFrequencies(c);
  return m;
}

// An index over the weights' memory, named in `scheme`.
TensorIndex IndexOf(const LlamaWeights& w, NamingScheme scheme) {
  TensorIndex index;
  ForEachTensor(w, [&](TensorId id, const Weight& t) {
    EXPECT_TRUE(
        index.Add({TensorName(scheme, id), t.dtype, t.shape, t.data, t.n_bytes(), "mem"}).ok());
  });
  return index;
}

TEST(Init, DeterministicAndIndependentOfThreads) {
  const LlamaConfig c = Tiny();
  ThreadPool pool(2);
  auto a = InitRandomWeights(c, DType::kF32, 5, nullptr);
  auto b = InitRandomWeights(c, DType::kF32, 5, &pool);
  auto d = InitRandomWeights(c, DType::kF32, 6, nullptr);
  ASSERT_TRUE(a.ok() && b.ok() && d.ok());
  const Weight& wa = a->layers[1].w2;
  EXPECT_EQ(std::memcmp(wa.data, b->layers[1].w2.data, wa.n_bytes()), 0);
  EXPECT_NE(std::memcmp(wa.data, d->layers[1].w2.data, wa.n_bytes()), 0);
  // Statistics of N(0, 0.02) over the embedding; norms are exactly 1.
  const Weight& e = a->tok_embeddings;
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < e.numel(); ++i) sum += e.f32()[i], sq += double(e.f32()[i]) * e.f32()[i];
  const double mean = sum / e.numel(), std = std::sqrt(sq / e.numel() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.001);
  EXPECT_NEAR(std, 0.02, 0.0005);
  for (int i = 0; i < c.dim; ++i) EXPECT_EQ(a->norm.f32()[i], 1.0f);
  EXPECT_TRUE(a->tied == false && a->output.data != a->tok_embeddings.data);
  auto tied = InitRandomWeights(Tiny(true), DType::kBF16, 5, nullptr);
  EXPECT_EQ(tied->output.data, tied->tok_embeddings.data);
}

TEST(Weights, RopePermutationRoundTripsAndPairsRows) {
  const LlamaConfig c = Tiny();
  auto w = InitRandomWeights(c, DType::kBF16, 3, nullptr);
  const Weight& wq = w->layers[0].wq;
  auto hf = PermuteRowsMetaToHf(wq, c.n_heads);
  Weight hf_w{wq.dtype, wq.shape, hf.data(), nullptr};
  auto back = PermuteRowsHfToMeta(hf_w, c.n_heads);
  EXPECT_EQ(std::memcmp(back.data(), wq.data, wq.n_bytes()), 0);
  // HF row 1 of head 0 is Meta row 2 (the first element of the second pair).
  const uint64_t row = wq.n_bytes() / wq.rows();
  EXPECT_EQ(std::memcmp(hf.data() + row, wq.data + 2 * row, row), 0);
  EXPECT_EQ(std::memcmp(hf.data() + (c.head_dim / 2) * row, wq.data + row, row), 0);
}

TEST(Bind, ErrorsNameTheTensor) {
  const LlamaConfig c = Tiny();
  auto w = InitRandomWeights(c, DType::kF32, 1, nullptr);
  TensorIndex full = IndexOf(*w, NamingScheme::kMeta);
  LlamaWeights out;
  std::vector<std::string> warnings;
  EXPECT_TRUE(BindWeights(c, full, NamingScheme::kMeta, false, &out, &warnings).ok());
  EXPECT_TRUE(warnings.empty());

  auto rebuild = [&](const std::function<bool(TensorEntry&)>& edit) {
    TensorIndex index;
    for (TensorEntry e : full.entries()) {
      if (edit(e)) {
        EXPECT_TRUE(index.Add(e).ok());
      }
    }
    return index;
  };
  auto bind_error = [&](const TensorIndex& index) {
    LlamaWeights o;
    std::vector<std::string> ws;
    Status s = BindWeights(c, index, NamingScheme::kMeta, false, &o, &ws);
    EXPECT_FALSE(s.ok());
    return s.message();
  };
  {
    auto missing = rebuild([](TensorEntry& e) { return e.name != "layers.1.attention.wk.weight"; });
    EXPECT_NE(bind_error(missing).find("missing tensor 'layers.1.attention.wk.weight'"),
              std::string::npos);
    auto no_output = rebuild([](TensorEntry& e) { return e.name != "output.weight"; });
    EXPECT_NE(bind_error(no_output).find("not tied"), std::string::npos);
    auto shape = rebuild([](TensorEntry& e) {
      if (e.name == "layers.0.feed_forward.w2.weight") std::swap(e.shape[0], e.shape[1]);
      return true;
    });
    EXPECT_NE(bind_error(shape).find("'layers.0.feed_forward.w2.weight' has shape [192, 64]"),
              std::string::npos);
    auto dtype = rebuild([](TensorEntry& e) {
      if (e.name == "norm.weight") e.dtype = DType::kI32;
      return true;
    });
    EXPECT_NE(bind_error(dtype).find("'norm.weight' has dtype i32"), std::string::npos);
  }
  // Extra tensors are warnings, not errors.
  TensorIndex extra = rebuild([](TensorEntry&) { return true; });
  ASSERT_TRUE(extra.Add({"vision.patch", DType::kF32, {4}, full.entries()[0].data, 16, "f"}).ok());
  LlamaWeights o;
  warnings.clear();
  EXPECT_TRUE(BindWeights(c, extra, NamingScheme::kMeta, false, &o, &warnings).ok());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("vision.patch"), std::string::npos);
}

TEST(MetaShards, MergeInvertsTheSplit) {
  const LlamaConfig c = Tiny();
  auto w = InitRandomWeights(c, DType::kF32, 9, nullptr);
  TensorIndex full = IndexOf(*w, NamingScheme::kMeta);
  // Split every tensor as Meta's model parallelism does, into 2 shards.
  std::vector<std::vector<std::vector<uint8_t>>> bufs(2);
  std::vector<TensorIndex> shards(2);
  for (const TensorEntry& e : full.entries()) {
    auto id = ParseTensorName(NamingScheme::kMeta, e.name);
    const int dim = e.shape.size() == 2 ? MetaSplitDim(id->role) : -1;
    for (int s = 0; s < 2; ++s) {
      TensorEntry part = e;
      if (dim < 0) {
        ASSERT_TRUE(shards[s].Add(part).ok());
        continue;
      }
      part.shape[dim] /= 2;
      const uint64_t row = e.n_bytes / e.shape[0];
      std::vector<uint8_t> b;
      for (int64_t r = 0; r < e.shape[0]; ++r) {
        if (dim == 0 && (r < s * part.shape[0] || r >= (s + 1) * part.shape[0])) continue;
        const uint8_t* p = e.data + r * row + (dim == 1 ? s * row / 2 : 0);
        b.insert(b.end(), p, p + (dim == 1 ? row / 2 : row));
      }
      bufs[s].push_back(std::move(b));
      part.data = bufs[s].back().data(), part.n_bytes = bufs[s].back().size();
      ASSERT_TRUE(shards[s].Add(part).ok());
    }
  }
  auto merged = MergeMetaShards(std::move(shards));
  ASSERT_TRUE(merged.ok()) << merged.status().message();
  for (const TensorEntry& e : full.entries()) {
    const TensorEntry* m = merged->Find(e.name);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->shape, e.shape) << e.name;
    EXPECT_EQ(std::memcmp(m->data, e.data, e.n_bytes), 0) << e.name;
  }
}

TEST(Forward, IncrementalDecodeEqualsOneBatchAndChunksAgree) {
  const Model m = MakeModel(Tiny());
  ThreadPool pool(2);
  std::vector<int> tokens(300);
  for (int i = 0; i < 300; ++i) tokens[i] = (i * 37 + 11) % 512;
  // All 300 at once (two prefill chunks of 256 + 44) vs 299 then 1 vs one at a time.
  KVCache a(m.config, 300), b(m.config, 300), d(m.config, 300);
  std::vector<float> all, last_b, step;
  ASSERT_TRUE(Forward(m, tokens, &a, true, &all, &pool).ok());
  ASSERT_TRUE(Forward(m, std::span(tokens).first(299), &b, false, &last_b, &pool).ok());
  ASSERT_TRUE(Forward(m, std::span(tokens).last(1), &b, false, &last_b, &pool).ok());
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(Forward(m, std::span(tokens).subspan(i, 1), &d, false, &step, nullptr).ok());
    if (i == 10 || i == 299) {
      for (int v = 0; v < 512; ++v)
        EXPECT_NEAR(step[v], all[i * 512 + v], 1e-5) << "position " << i << " token " << v;
    }
  }
  for (int v = 0; v < 512; ++v) EXPECT_NEAR(last_b[v], all[299 * 512 + v], 1e-5);
  EXPECT_EQ(a.size(), 300);
}

// A sequence continued from another cache's copied prefix (the server's prompt cache; capacities
// differ, so a head-major cache's per-head runs land at other offsets) gives the same logits as
// one computed from the start, for every cache type.
TEST(KVCache, CopiedPrefixContinuesLikeTheOriginal) {
  const Model m = MakeModel(Tiny());
  std::vector<int> tokens(30);
  for (int i = 0; i < 30; ++i) tokens[i] = (i * 53 + 7) % 512;
  for (DType t : {DType::kF16, DType::kBF16, DType::kF32}) {
    SCOPED_TRACE(std::string(Name(t)));
    KVCache full(m.config, 64, t), donor(m.config, 100, t), copy(m.config, 40, t);
    std::vector<float> want, got, unused;
    ASSERT_TRUE(Forward(m, tokens, &full, false, &want, nullptr).ok());
    ASSERT_TRUE(Forward(m, std::span(tokens).first(20), &donor, false, &unused, nullptr).ok());
    copy.CopyPrefix(donor, 12);
    ASSERT_EQ(copy.size(), 12);
    ASSERT_TRUE(Forward(m, std::span(tokens).subspan(12), &copy, false, &got, nullptr).ok());
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0);
  }
}

TEST(Forward, BadInputIsAnError) {
  const Model m = MakeModel(Tiny());
  KVCache cache(m.config, 4);
  std::vector<float> logits;
  std::vector<int> bad = {1, 512};
  Status s = Forward(m, bad, &cache, false, &logits, nullptr);
  EXPECT_NE(s.message().find("token 512 (at index 1) is out of range"), std::string::npos);
  std::vector<int> five = {1, 2, 3, 4, 5};
  s = Forward(m, five, &cache, false, &logits, nullptr);
  EXPECT_NE(s.message().find("context full"), std::string::npos);
  EXPECT_EQ(cache.size(), 0);
  EXPECT_FALSE(Forward(m, {}, &cache, false, &logits, nullptr).ok());
}

TEST(SaveLoad, EveryFormatRoundTripsTheWeights) {
  const LlamaConfig c = Tiny(true);
  auto w = InitRandomWeights(c, DType::kF32, 4, nullptr);
  const std::string dir = ::testing::TempDir() + "/herd_model_test";
  std::filesystem::remove_all(dir);
  for (auto [fmt, path] : {std::pair{ModelFormat::kHf, dir + "/hf"},
                           {ModelFormat::kMeta, dir + "/meta"},
                           {ModelFormat::kGguf, dir + "/m.gguf"}}) {
    SaveOptions o;
    o.format = fmt, o.dtype = DType::kF32, o.meta_shards = fmt == ModelFormat::kMeta ? 2 : 1;
    ASSERT_TRUE(SaveModel(c, *w, nullptr, o, path).ok()) << FormatName(fmt);
    auto m = LoadModel(path);
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_EQ(m->files.format, fmt);
    EXPECT_TRUE(m->weights.tied);
    EXPECT_EQ(m->config.dim, c.dim);
    ForEachTensor(m->weights, [&](TensorId id, const Weight& t) {
      const Weight* orig = nullptr;
      ForEachTensor(*w, [&](TensorId o_id, const Weight& o_t) {
        if (o_id == id) orig = &o_t;
      });
      ASSERT_NE(orig, nullptr);
      EXPECT_EQ(t.shape, orig->shape);
      EXPECT_EQ(std::memcmp(t.data, orig->data, t.n_bytes()), 0)
          << FormatName(fmt) << " " << TensorName(NamingScheme::kMeta, id);
    });
    for (size_t i = 0; i < m->rope_inv_freq.size(); ++i)
      EXPECT_NEAR(m->rope_inv_freq[i], RopeInverseFrequencies(c)[i],
                  1e-6 * RopeInverseFrequencies(c)[i]);
  }
  std::filesystem::create_directories(dir + "/empty");
  auto empty = LoadModel(dir + "/empty");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("not a model"), std::string::npos);
  // Truncated weights: an error naming the file, never a crash.
  std::filesystem::resize_file(dir + "/m.gguf", std::filesystem::file_size(dir + "/m.gguf") / 2);
  auto truncated = LoadModel(dir + "/m.gguf");
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("m.gguf"), std::string::npos);
}

bool Mentions(const std::vector<std::string>& warnings, const std::string& text) {
  for (const auto& w : warnings)
    if (w.find(text) != std::string::npos) return true;
  return false;
}

TEST(SelfCheck, Llama32ShapeWithFactor8IsFlagged) {
  Model m;
  m.files.root = "m";
  m.config = *PresetConfig("llama3.2-1b");
  EXPECT_FALSE(Mentions(SelfCheck(m, nullptr), "factor"));
  m.config.rope_scaling->factor = 8;
  EXPECT_TRUE(Mentions(SelfCheck(m, nullptr), "RoPE scaling factor 8; Llama 3.2 uses 32"));
  m.config.rope_scaling.reset();
  EXPECT_TRUE(Mentions(SelfCheck(m, nullptr), "without llama3 RoPE scaling"));
}

TEST(SelfCheck, InstructModelWithoutEotInEosIsFlagged) {
  auto tok = LoadTokenizer(testing::Llama3TokenizerPath());
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  Model m;
  m.files.root = "m";
  m.config = *PresetConfig("llama3-8b");
  m.config.eos_ids = {128001};
  EXPECT_FALSE(Mentions(SelfCheck(m, &*tok), "<|eot_id|>"));  // a base model: no template
  m.chat_template = "{{ bos_token }}...";
  EXPECT_TRUE(Mentions(SelfCheck(m, &*tok), "do not include <|eot_id|> (128009)"));
  m.config.eos_ids = {128001, 128009};
  EXPECT_FALSE(Mentions(SelfCheck(m, &*tok), "<|eot_id|>"));
  m.config.vocab_size = 1000;
  EXPECT_TRUE(Mentions(SelfCheck(m, &*tok), "the tokenizer has 128256 tokens"));
}

}  // namespace
}  // namespace herd
