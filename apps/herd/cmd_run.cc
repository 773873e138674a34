// herd run  --model PATH --prompt TEXT [--chat] [--system TEXT] [sampling flags]
// herd chat --model PATH [--system TEXT] [sampling flags]
// run streams the completion (or, with --chat, the assistant's reply in Llama 3's chat format) to
// stdout and prints prompt / generation tokens per second to stderr. chat is a multi-turn REPL
// that keeps the KV cache between turns: each turn prefills only its new tokens.
#include <cstdio>
#include <iostream>
#include <string>

#include "apps/herd/commands.h"
#include "apps/herd/model_common.h"
#include "base/paths.h"
#include "generate/generate.h"
#include "tokenizer/chat_template.h"

namespace herd::app {
namespace {

struct RunOptions {
  std::string model, prompt, system, cache_type = "f16", numerics = "herd";
  bool chat = false, verbose_prompt = false, print_ids = false;
  int max_tokens = 256, ctx = 0, threads = 0;
  SamplerParams sampler;
};

void AddSamplingFlags(CLI::App* cmd, RunOptions* o) {
  cmd->add_option("--model", o->model,
                  "HF directory, Meta directory or .gguf file (default: $HERD_MODEL, else the "
                  "SmolLM2-135M-Instruct GGUF scripts/setup installs)");
  cmd->add_option("--system", o->system, "System prompt (chat)");
  cmd->add_option("--max-tokens", o->max_tokens, "Tokens to generate at most")
      ->capture_default_str();
  cmd->add_option("--temperature", o->sampler.temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", o->sampler.top_k, "<= 0: off")->capture_default_str();
  cmd->add_option("--top-p", o->sampler.top_p, "1: off")->capture_default_str();
  cmd->add_option("--min-p", o->sampler.min_p, "0: off")->capture_default_str();
  cmd->add_option("--repeat-penalty", o->sampler.repeat_penalty, "1: off")->capture_default_str();
  cmd->add_option("--seed", o->sampler.seed, "Sampling seed")->capture_default_str();
  cmd->add_option("--ctx", o->ctx, "Context (KV cache) positions; 0: model's, at most 8192");
  cmd->add_option("--threads", o->threads, "Threads (0 = all cores)");
  cmd->add_option("--cache-type", o->cache_type, kCacheTypeHelp);
  cmd->add_option("--numerics", o->numerics, kNumericsHelp);
}

// The model to load: --model, or the default one (saying so).
std::string ModelPath(const RunOptions& o) {
  if (!o.model.empty()) return o.model;
  const std::string path = DefaultModelPath();
  std::fprintf(stderr, "herd: no --model given; using the default model %s\n", path.c_str());
  return path;
}

bool PrintPiece(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return true;
}

void PrintStats(const GenerateResult& r) {
  const int n = static_cast<int>(r.tokens.size()) + (r.stop_token >= 0 ? 1 : 0);
  std::fprintf(
      stderr, "\nherd: prompt %d tokens, %.1f tokens/s; generation %d tokens, %.1f tokens/s (%s)\n",
      r.prompt_tokens, r.prompt_tokens / std::max(r.prefill_seconds, 1e-9), n,
      n / std::max(r.decode_seconds, 1e-9), FinishReasonName(r.finish));
}

int RunRun(const RunOptions& o) {
  const auto cache_type = ParseCacheTypeFlag(o.cache_type);
  if (!cache_type) return 1;
  const auto numerics = ParseNumericsFlag(o.numerics);
  if (!numerics) return 1;
  auto loaded = LoadForInference(ModelPath(o), o.ctx, *cache_type, true, false, 1, *numerics);
  if (!loaded) return 1;
  const Model& model = loaded->model;
  const Tokenizer& tok = *loaded->tokenizer;
  std::vector<int32_t> prompt;
  if (o.chat) {
    auto style = DetectChatStyle(model.chat_template, tok);
    if (!style.ok()) return Fail(style.status().message());
    auto ids = EncodeChatPrompt(*style, tok, o.system, o.prompt);
    if (!ids.ok()) return Fail(ids.status().message());
    prompt = std::move(ids).value();
  } else {
    EncodeOptions options;
    options.add_bos = model.add_bos;
    prompt = tok.Encode(o.prompt, options);
  }
  if (prompt.empty()) return Fail("the prompt encodes to no tokens");
  if (o.verbose_prompt) {
    std::string ids;
    for (int32_t id : prompt) ids += (ids.empty() ? "" : ",") + std::to_string(id);
    std::fprintf(stderr, "herd: prompt ids: [%s]\n", ids.c_str());
  }
  ThreadPool pool(o.threads);
  KVCache cache(model.config, loaded->ctx, loaded->cache_type);
  GenerateOptions g{o.max_tokens, o.sampler, DefaultStopIds(model.config, tok), {}};
  auto r = Generate(model, tok, prompt, &cache, g, &pool, PrintPiece);
  if (!r.ok()) return Fail(r.status().message());
  PrintStats(*r);
  if (o.print_ids) {
    std::string ids;
    for (int32_t id : r->tokens) ids += (ids.empty() ? "" : ",") + std::to_string(id);
    if (r->stop_token >= 0) ids += (ids.empty() ? "" : ",") + std::to_string(r->stop_token);
    std::fprintf(stderr, "herd: output ids: [%s]\n", ids.c_str());
  }
  return 0;
}

int RunChat(const RunOptions& o) {
  const auto cache_type = ParseCacheTypeFlag(o.cache_type);
  if (!cache_type) return 1;
  const auto numerics = ParseNumericsFlag(o.numerics);
  if (!numerics) return 1;
  auto loaded = LoadForInference(ModelPath(o), o.ctx, *cache_type, true, false, 1, *numerics);
  if (!loaded) return 1;
  const Model& model = loaded->model;
  const Tokenizer& tok = *loaded->tokenizer;
  auto style = DetectChatStyle(model.chat_template, tok);
  if (!style.ok()) return Fail(style.status().message());
  auto eot = EndOfTurnId(*style, tok);
  if (!eot.ok()) return Fail(eot.status().message());
  const std::vector<int32_t> after_eot = AfterEndOfTurn(*style, tok);
  ThreadPool pool(o.threads);
  KVCache cache(model.config, loaded->ctx, loaded->cache_type);
  GenerateOptions g{o.max_tokens, o.sampler, DefaultStopIds(model.config, tok), {}};
  // Tokens that belong to the conversation but are not in the cache yet: the opening (BOS, system
  // message) before the first turn, the end of the previous reply after it.
  std::vector<int32_t> pending;
  auto reset = [&]() -> Status {
    cache.Clear();
    HERD_ASSIGN_OR_RETURN(pending, EncodeChatStart(*style, tok, o.system));
    return Status::Ok();
  };
  if (Status s = reset(); !s.ok()) return Fail(s.message());
  std::fprintf(
      stderr, "herd: chat (%s format, %d positions of context). /reset starts over, /exit quits.\n",
      ChatFormatName(style->format), cache.capacity());
  std::string line;
  while (true) {
    std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line == "/reset") {
      if (Status s = reset(); !s.ok()) return Fail(s.message());
      std::fprintf(stderr, "herd: conversation reset\n");
      continue;
    }
    if (line.empty()) continue;
    auto turn = EncodeChatTurn(*style, tok, {"user", line});
    if (!turn.ok()) return Fail(turn.status().message());
    std::vector<int32_t> prompt = pending;
    prompt.insert(prompt.end(), turn->begin(), turn->end());
    if (cache.size() + static_cast<int>(prompt.size()) + 1 > cache.capacity()) {
      std::fprintf(stderr,
                   "herd: the context is full (%d of %d positions used; this turn needs %zu more). "
                   "Type /reset to start a new conversation, or restart with a larger --ctx.\n",
                   cache.size(), cache.capacity(), prompt.size());
      continue;
    }
    auto r = Generate(model, tok, prompt, &cache, g, &pool, PrintPiece);
    if (!r.ok()) return Fail(r.status().message());
    PrintStats(*r);
    // The sampled stop token, or the last generated one, has not been run yet; a reply that ended
    // otherwise is closed with the end-of-turn token so the next turn sees a well-formed dialog.
    pending.clear();
    if (r->stop_token < 0 && !r->tokens.empty()) pending.push_back(r->tokens.back());
    pending.push_back(r->stop_token == *eot || r->stop_token < 0 ? *eot : r->stop_token);
    pending.insert(pending.end(), after_eot.begin(), after_eot.end());
    if (r->finish == FinishReason::kContextFull)
      std::fprintf(stderr, "herd: the context is full; type /reset to start a new conversation\n");
  }
  return 0;
}

}  // namespace

void AddRunCommands(CLI::App& app, int* exit_code) {
  static RunOptions run, chat;
  auto* r = app.add_subcommand("run", "Generate text from a prompt");
  AddSamplingFlags(r, &run);
  r->add_option("--prompt", run.prompt, "Prompt text (never parsed for special tokens)")
      ->required();
  r->add_flag("--chat", run.chat, "Wrap the prompt in Llama 3's chat format");
  r->add_flag("--verbose-prompt", run.verbose_prompt, "Print the prompt's token ids to stderr");
  r->add_flag("--print-ids", run.print_ids,
              "Print the generated token ids (with the stop token, if one ended the reply) to "
              "stderr at the end");
  r->callback([exit_code] { *exit_code = RunRun(run); });
  auto* c = app.add_subcommand("chat", "Interactive multi-turn chat (keeps the KV cache)");
  AddSamplingFlags(c, &chat);
  c->callback([exit_code] { *exit_code = RunChat(chat); });
}

}  // namespace herd::app
