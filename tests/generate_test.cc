// The generation loop on a tiny random model with the real Llama 3 tokenizer: greedy equals the
// argmax of Forward's logits step by step, stop tokens end generation without being emitted,
// max_tokens / cancellation / stop strings finish with the right reason, and the KV cache holds
// exactly prompt + generated - 1 positions (the last sample is not run).
#include "generate/generate.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "tiny_model.h"

namespace herd {
namespace {

const testing::TinyModel& Get() { return testing::GetTinyModel(); }

GenerateOptions Greedy(int max_tokens) {
  GenerateOptions g;
  g.max_tokens = max_tokens;
  g.sampler.temperature = 0;
  return g;
}

TEST(Generate, GreedyIsArgmaxOfForwardAndCacheHoldsWhatRan) {
  const auto& [model, tok] = Get();
  const std::vector<int> prompt = {128000, 9906, 1917};
  KVCache cache(model.config, 64);
  std::string text;
  auto r = Generate(model, tok, prompt, &cache, Greedy(6), nullptr, [&](std::string_view s) {
    text += s;
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->finish, FinishReason::kLength);
  ASSERT_EQ(r->tokens.size(), 6u);
  EXPECT_EQ(cache.size(), 3 + 6 - 1);
  EXPECT_EQ(text, *tok.Decode(std::vector<int32_t>(r->tokens.begin(), r->tokens.end())));
  // Replay with Forward: each generated token is the argmax after the previous ones.
  KVCache replay(model.config, 64);
  std::vector<float> logits;
  std::vector<int> seq = prompt;
  ASSERT_TRUE(Forward(model, seq, &replay, false, &logits, nullptr).ok());
  for (int id : r->tokens) {
    EXPECT_EQ(id, std::max_element(logits.begin(), logits.end()) - logits.begin());
    const int one[1] = {id};
    ASSERT_TRUE(Forward(model, one, &replay, false, &logits, nullptr).ok());
  }
}

TEST(Generate, StopTokenEndsWithoutBeingEmitted) {
  const auto& [model, tok] = Get();
  GenerateOptions g = Greedy(10);
  g.stop_ids = DefaultStopIds(model.config, tok);
  EXPECT_TRUE(std::count(g.stop_ids.begin(), g.stop_ids.end(), 128009));  // <|eot_id|>
  EXPECT_TRUE(std::count(g.stop_ids.begin(), g.stop_ids.end(), 128008));  // <|eom_id|>
  EXPECT_TRUE(std::count(g.stop_ids.begin(), g.stop_ids.end(), 128001));  // <|end_of_text|>
  g.sampler.logit_bias = {{128009, 1e4f}};                                // force <|eot_id|> first
  KVCache cache(model.config, 16);
  std::string text;
  auto r = Generate(model, tok, std::vector<int>{128000, 9906}, &cache, g, nullptr,
                    [&](std::string_view s) {
                      text += s;
                      return true;
                    });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish, FinishReason::kStop);
  EXPECT_EQ(r->stop_token, 128009);
  EXPECT_TRUE(r->tokens.empty());
  EXPECT_EQ(text, "");
}

TEST(Generate, CancelStopStringsAndContextLimits) {
  const auto& [model, tok] = Get();
  KVCache cache(model.config, 8);
  int calls = 0;
  auto r = Generate(model, tok, std::vector<int>{128000}, &cache, Greedy(20), nullptr,
                    [&](std::string_view) { return ++calls < 2; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish, FinishReason::kCancelled);

  // A stop string made of the text greedy decoding produces anyway: cut there.
  cache.Clear();
  std::string full;
  auto base = Generate(model, tok, std::vector<int>{128000}, &cache, Greedy(5), nullptr,
                       [&](std::string_view s) {
                         full += s;
                         return true;
                       });
  ASSERT_TRUE(base.ok() && full.size() > 4);
  GenerateOptions g = Greedy(5);
  g.stop_strings = {full.substr(2, 2)};
  cache.Clear();
  std::string cut;
  auto r2 =
      Generate(model, tok, std::vector<int>{128000}, &cache, g, nullptr, [&](std::string_view s) {
        cut += s;
        return true;
      });
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->finish, FinishReason::kStop);
  EXPECT_EQ(cut, full.substr(0, full.find(g.stop_strings[0])));

  // The context fills: generation stops with kContextFull, and a prompt that cannot fit is an
  // error, not a silent truncation.
  KVCache small(model.config, 4);
  auto full_ctx = Generate(model, tok, std::vector<int>{128000, 1, 2}, &small, Greedy(10), nullptr,
                           [](std::string_view) { return true; });
  ASSERT_TRUE(full_ctx.ok());
  EXPECT_EQ(full_ctx->finish, FinishReason::kContextFull);
  KVCache tiny(model.config, 2);
  auto too_long = Generate(model, tok, std::vector<int>{1, 2, 3}, &tiny, Greedy(1), nullptr,
                           [](std::string_view) { return true; });
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("larger --ctx"), std::string::npos);
}

}  // namespace
}  // namespace herd
