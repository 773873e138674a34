#include "generate/generate.h"

#include <algorithm>

#include "base/timer.h"
#include "generate/stop.h"
#include "tokenizer/stream_decoder.h"

namespace herd {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kContextFull:
      return "context_full";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "?";
}

std::vector<int> DefaultStopIds(const LlamaConfig& config, const Tokenizer& tokenizer) {
  std::vector<int> ids = config.eos_ids;
  for (const char* text :
       {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>"}) {
    if (auto id = tokenizer.SpecialId(text)) ids.push_back(*id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

Result<GenerateResult> Generate(const Model& model, const Tokenizer& tokenizer,
                                std::span<const int> prompt, KVCache* cache,
                                const GenerateOptions& options, ThreadPool* pool,
                                const std::function<bool(std::string_view)>& on_text) {
  HERD_RETURN_IF_ERROR(ValidateSamplerParams(options.sampler, model.config.vocab_size));
  GenerateResult result;
  result.prompt_tokens = static_cast<int>(prompt.size());
  if (cache->size() + static_cast<int>(prompt.size()) > cache->capacity())
    return Status::Errorf(
        "the prompt needs {} positions but only {} of the context's {} are free; start a new "
        "conversation or use a larger --ctx",
        prompt.size(), cache->capacity() - cache->size(), cache->capacity());
  Sampler sampler(options.sampler, model.config.vocab_size);
  StopMatcher stops(options.stop_ids, options.stop_strings);
  StreamDecoder decoder(tokenizer);
  std::vector<int> history(prompt.begin(), prompt.end());
  std::vector<float> logits;
  Timer timer;
  HERD_RETURN_IF_ERROR(Forward(model, prompt, cache, false, &logits, pool));
  result.prefill_seconds = timer.Seconds();
  timer.Reset();
  auto emit = [&](const std::string& text) { return text.empty() || on_text(text); };
  bool stopped_by_string = false;
  while (static_cast<int>(result.tokens.size()) < options.max_tokens) {
    const int id = sampler.Sample(logits, history);
    if (stops.IsStopToken(id)) {
      result.stop_token = id;
      result.finish = FinishReason::kStop;
      break;
    }
    result.tokens.push_back(id);
    history.push_back(id);
    HERD_ASSIGN_OR_RETURN(std::string piece, decoder.Push(id));
    if (!emit(stops.Push(piece, &stopped_by_string))) {
      result.finish = FinishReason::kCancelled;
      break;
    }
    if (stopped_by_string) {
      result.finish = FinishReason::kStop;
      break;
    }
    if (static_cast<int>(result.tokens.size()) == options.max_tokens) break;
    if (cache->size() >= cache->capacity()) {
      result.finish = FinishReason::kContextFull;
      break;
    }
    const int one[1] = {id};
    HERD_RETURN_IF_ERROR(Forward(model, one, cache, false, &logits, pool));
  }
  if (result.finish != FinishReason::kCancelled && !stopped_by_string) {
    std::string rest = stops.Push(decoder.Flush(), &stopped_by_string);
    rest += stops.Flush();
    emit(rest);
  }
  result.decode_seconds = timer.Seconds();
  return result;
}

}  // namespace herd
