// The generation loop: prefill the prompt into a sequence's KV cache, then sample one token at a
// time until a stop token, a stop string or the token limit, streaming text as it completes
// (partial UTF-8 held back). The cache keeps everything, so a chat's next turn only prefills the
// new tokens.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "generate/sampler.h"
#include "model/forward.h"
#include "tokenizer/tokenizer.h"

namespace herd {

struct GenerateOptions {
  int max_tokens = 256;
  SamplerParams sampler;
  std::vector<int> stop_ids;  // besides these, generation stops when the context is full
  std::vector<std::string> stop_strings;
};

enum class FinishReason { kStop, kLength, kContextFull, kCancelled };
const char* FinishReasonName(FinishReason r);

struct GenerateResult {
  std::vector<int> tokens;  // generated ids, the stop token excluded
  int stop_token = -1;      // the stop id that ended generation, if any
  FinishReason finish = FinishReason::kLength;
  int prompt_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

// The end-of-turn / end-of-text ids the vocabulary has (Llama 3: <|eot_id|>, <|eom_id|>,
// <|end_of_text|>; ChatML models: <|im_end|>, <|endoftext|>) plus the model's eos ids.
std::vector<int> DefaultStopIds(const LlamaConfig& config, const Tokenizer& tokenizer);

// Runs `prompt` after what the cache holds, then generates. on_text receives text pieces as they
// complete; returning false cancels. The sampled stop token is not added to the cache (the next
// turn's prompt begins with it when the chat format needs it).
Result<GenerateResult> Generate(const Model& model, const Tokenizer& tokenizer,
                                std::span<const int> prompt, KVCache* cache,
                                const GenerateOptions& options, ThreadPool* pool,
                                const std::function<bool(std::string_view)>& on_text);

}  // namespace herd
