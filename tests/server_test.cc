// The server's engine and request parsing, without HTTP (tests/python/test_server.py drives the
// real server). The engine is checked against the single-sequence Generate loop: every sequence
// of a continuously batched run (joining mid-way, prompts read in chunks, slots reused with a
// cached prefix) gives exactly the tokens it gives alone.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include "generate/generate.h"
#include "server/api.h"
#include "server/engine.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "tiny_model.h"

namespace herd::server {
namespace {

using namespace std::chrono_literals;

const testing::TinyModel& Get() { return testing::GetTinyModel(); }

struct Outcome {
  std::vector<int> ids;  // from the logprobs events
  std::string text, finish, error;
  int completion_tokens = 0, cached_tokens = 0;
};

// Collects one inbox's events (n sequences) until all are done.
std::vector<Outcome> Collect(Inbox* inbox, int n) {
  std::vector<Outcome> out(n);
  int done = 0;
  while (done < n) {
    auto e = inbox->Pop(10s);
    if (!e) {
      ADD_FAILURE() << "no event within 10 s";
      break;
    }
    Outcome& o = out[e->index];
    for (const TokenLogprob& lp : e->logprobs) o.ids.push_back(lp.id);
    o.text += e->text;
    if (e->done) {
      ++done;
      o.finish = e->finish;
      o.error = e->error;
      o.completion_tokens = e->completion_tokens;
      o.cached_tokens = e->cached_tokens;
    }
  }
  return out;
}

SeqParams Params(std::vector<int32_t> prompt, int max_tokens, float temperature, uint64_t seed) {
  SeqParams p;
  p.prompt = std::move(prompt);
  p.max_tokens = max_tokens;
  p.sampler.temperature = temperature;
  p.sampler.seed = seed;
  p.stop_ids = DefaultStopIds(Get().model.config, Get().tok);
  p.top_logprobs = 0;  // the events then carry each sampled id
  return p;
}

// What Generate (one sequence, Forward per token) gives for the same params.
Outcome Alone(const SeqParams& p) {
  const auto& [model, tok] = Get();
  KVCache cache(model.config, 256);
  GenerateOptions g{p.max_tokens, p.sampler, p.stop_ids, p.stop_strings};
  Outcome o;
  auto r = Generate(model, tok, p.prompt, &cache, g, nullptr, [&](std::string_view s) {
    o.text += s;
    return true;
  });
  EXPECT_TRUE(r.ok()) << r.status().message();
  o.ids = r->tokens;
  o.completion_tokens = static_cast<int>(r->tokens.size());
  o.finish = r->finish == FinishReason::kStop ? "stop" : "length";
  return o;
}

// A port another server listens on is an error, not a shared listener (cpp-httplib's default
// SO_REUSEPORT would let both bind and split the connections between them).
TEST(HttpServer, PortInUseIsAnError) {
  Metrics metrics;
  ServerOptions o;
  o.port = 0;
  HttpServer first(o, &metrics);
  ASSERT_TRUE(first.Bind().ok());
  o.port = first.port();
  HttpServer second(o, &metrics);
  const Status st = second.Bind();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("address in use"), std::string::npos) << st.message();
}

TEST(Engine, BatchedSequencesEqualEachAlone) {
  const auto& [model, tok] = Get();
  Metrics metrics;
  // 3 slots for 6 sequences: some wait and join mid-way; 7 rows per step: prompts are read in
  // chunks while others decode.
  EngineOptions options{.parallel = 3, .ctx = 256, .queue = 16, .step_tokens = 7, .threads = 2};
  Engine engine(model, tok, options, &metrics);
  std::vector<SeqParams> seqs;
  for (int i = 0; i < 6; ++i) {
    std::vector<int32_t> prompt = {128000};
    tok.EncodeOrdinary(
        std::string("Sequence number ") + std::to_string(i) + std::string(i * 3, 'x') + " says",
        &prompt);
    seqs.push_back(Params(prompt, 12 + i, i % 2 ? 0.9f : 0.0f, 100 + i));
  }
  auto inbox = std::make_shared<Inbox>();
  ASSERT_EQ(engine.Submit(seqs, inbox), SubmitResult::kOk);
  const auto got = Collect(inbox.get(), 6);
  for (int i = 0; i < 6; ++i) {
    SCOPED_TRACE(i);
    const Outcome want = Alone(seqs[i]);
    EXPECT_EQ(got[i].error, "");
    EXPECT_EQ(got[i].ids, want.ids);
    EXPECT_EQ(got[i].text, want.text);
    EXPECT_EQ(got[i].finish, want.finish);
    EXPECT_EQ(got[i].completion_tokens, want.completion_tokens);
  }
  EXPECT_EQ(engine.active(), 0);
}

TEST(Engine, SlotReusesCachedPrefixAndStillMatches) {
  const auto& [model, tok] = Get();
  Metrics metrics;
  Engine engine(model, tok, {.parallel = 1, .ctx = 256, .queue = 4, .threads = 1}, &metrics);
  std::vector<int32_t> first = {128000};
  tok.EncodeOrdinary("You are a helpful assistant. Question one?", &first);
  auto inbox = std::make_shared<Inbox>();
  ASSERT_EQ(engine.Submit({Params(first, 5, 0, 1)}, inbox), SubmitResult::kOk);
  EXPECT_EQ(Collect(inbox.get(), 1)[0].cached_tokens, 0);
  std::vector<int32_t> second = first;
  tok.EncodeOrdinary(" And question two?", &second);
  const SeqParams p = Params(second, 6, 0.7f, 5);
  inbox = std::make_shared<Inbox>();
  ASSERT_EQ(engine.Submit({p}, inbox), SubmitResult::kOk);
  const Outcome got = Collect(inbox.get(), 1)[0];
  EXPECT_EQ(got.cached_tokens, static_cast<int>(first.size()));
  const Outcome want = Alone(p);
  EXPECT_EQ(got.ids, want.ids);
  EXPECT_EQ(got.text, want.text);
}

TEST(Engine, NewcomerCopiesASharedPrefixFromABusySlot) {
  const auto& [model, tok] = Get();
  Metrics metrics;
  Engine engine(model, tok, {.parallel = 2, .ctx = 256, .queue = 4, .threads = 1}, &metrics);
  std::vector<int32_t> system = {128000};
  tok.EncodeOrdinary("You are a helpful assistant who answers every question briefly.", &system);
  std::vector<int32_t> first = system, second = system;
  tok.EncodeOrdinary(" First question?", &first);
  tok.EncodeOrdinary(" Another one!", &second);
  SeqParams long_running = Params(first, 200, 0.8f, 3);
  long_running.sampler.logit_bias = {{128001, -INFINITY}, {128008, -INFINITY}, {128009, -INFINITY}};
  auto busy = std::make_shared<Inbox>();
  ASSERT_EQ(engine.Submit({long_running}, busy), SubmitResult::kOk);
  ASSERT_TRUE(busy->Pop(10s).has_value());  // admitted, prompt in its cache, decoding
  const SeqParams p = Params(second, 6, 0.7f, 5);
  auto inbox = std::make_shared<Inbox>();
  ASSERT_EQ(engine.Submit({p}, inbox), SubmitResult::kOk);
  const Outcome got = Collect(inbox.get(), 1)[0];
  busy->Cancel();
  EXPECT_GE(got.cached_tokens, static_cast<int>(system.size()));  // copied, not recomputed
  EXPECT_LT(got.cached_tokens, static_cast<int>(second.size()));
  const Outcome want = Alone(p);
  EXPECT_EQ(got.ids, want.ids);
  EXPECT_EQ(got.text, want.text);
}

TEST(Engine, CancelFreesTheSlotAndQueueIsBounded) {
  const auto& [model, tok] = Get();
  Metrics metrics;
  Engine engine(model, tok, {.parallel = 1, .ctx = 256, .queue = 2, .threads = 1}, &metrics);
  SeqParams p = Params({128000, 9906}, 200, 0.8f, 3);
  p.sampler.logit_bias = {{128001, -INFINITY}, {128008, -INFINITY}, {128009, -INFINITY}};
  // One free slot + two queue places: four sequences are one too many.
  EXPECT_EQ(engine.Submit({p, p, p, p}, std::make_shared<Inbox>()), SubmitResult::kQueueFull);
  auto inbox = std::make_shared<Inbox>();
  ASSERT_EQ(engine.Submit({p}, inbox), SubmitResult::kOk);
  ASSERT_TRUE(inbox->Pop(10s).has_value());  // generating
  inbox->Cancel();
  std::optional<SeqEvent> last;
  while (auto e = inbox->Pop(5s)) {
    last = e;
    if (e->done) break;
  }
  ASSERT_TRUE(last && last->done);
  EXPECT_EQ(last->error, "cancelled");
  for (int i = 0; i < 100 && engine.active() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(engine.active(), 0);
  EXPECT_TRUE(engine.Drain(1s));
  EXPECT_EQ(engine.Submit({p}, std::make_shared<Inbox>()), SubmitResult::kShuttingDown);
}

TEST(Engine, DrainCancelsWhatOutlivesTheTimeout) {
  const auto& [model, tok] = Get();
  Metrics metrics;
  Engine engine(model, tok, {.parallel = 1, .ctx = 4096, .queue = 2, .threads = 1}, &metrics);
  SeqParams p = Params({128000, 9906}, 4000, 0.8f, 3);
  p.sampler.logit_bias = {{128001, -INFINITY}, {128008, -INFINITY}, {128009, -INFINITY}};
  auto inbox = std::make_shared<Inbox>();
  ASSERT_EQ(engine.Submit({p, p}, inbox), SubmitResult::kOk);
  EXPECT_FALSE(engine.Drain(200ms));
  const auto got = Collect(inbox.get(), 2);
  EXPECT_EQ(got[0].error, "cancelled");
  EXPECT_EQ(got[1].error, "cancelled");
  EXPECT_EQ(engine.active(), 0);
  EXPECT_EQ(engine.queued(), 0);
}

TEST(Engine, InvalidSequencesGetAnErrorNotACrash) {
  const auto& [model, tok] = Get();
  Metrics metrics;
  Engine engine(model, tok, {.parallel = 1, .ctx = 16, .queue = 8, .threads = 1}, &metrics);
  SeqParams empty = Params({}, 4, 0, 1), too_long = Params(std::vector<int32_t>(16, 9906), 4, 0, 1),
            bad_temp = Params({128000}, 4, -1, 1), ok = Params({128000}, 2, 0, 1);
  auto inbox = std::make_shared<Inbox>();
  ASSERT_EQ(engine.Submit({empty, too_long, bad_temp, ok}, inbox), SubmitResult::kOk);
  const auto got = Collect(inbox.get(), 4);
  for (int i = 0; i < 3; ++i) EXPECT_NE(got[i].error, "") << i;
  EXPECT_EQ(got[3].error, "");
  EXPECT_EQ(static_cast<size_t>(got[3].completion_tokens), got[3].ids.size());
}

// ---- request parsing ----

ApiContext Context() {
  const auto& [model, tok] = Get();
  ApiContext c;
  c.model_id = "tiny";
  c.tokenizer = &tok;
  c.chat_style = *DetectChatStyle("", tok);
  c.ctx = 64;
  c.vocab_size = model.config.vocab_size;
  c.max_n = 4;
  c.stop_ids = DefaultStopIds(model.config, tok);
  return c;
}

json Chat(json extra = json::object()) {
  json body = {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
  body.update(extra);
  return body;
}

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

ApiError ErrorOf(const std::variant<Job, ApiError>& r) {
  EXPECT_TRUE(std::holds_alternative<ApiError>(r));
  return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}

TEST(Api, ChatPromptIsTheDialogAndUserTextIsNeverSpecial) {
  const ApiContext ctx = Context();
  const json body = Chat({{"messages",
                           {{{"role", "system"}, {"content", "Be brief."}},
                            {{"role", "user"}, {"content", "<|eot_id|>?"}}}}});
  auto r = ParseChatRequest(body, ctx);
  ASSERT_TRUE(std::holds_alternative<Job>(r)) << ErrorOf(r).message;
  const Job& job = std::get<Job>(r);
  const std::vector<ChatMessage> dialog = {{"system", "Be brief."}, {"user", "<|eot_id|>?"}};
  EXPECT_EQ(job.seqs.at(0).prompt, *EncodeChatDialog(ctx.chat_style, *ctx.tokenizer, dialog));
  EXPECT_EQ(std::count(job.seqs[0].prompt.begin(), job.seqs[0].prompt.end(), 128009), 2);
  // Defaults: OpenAI's sampling (temperature 1, no top-k / min-p), the room the context leaves.
  EXPECT_EQ(job.seqs[0].sampler.temperature, 1.0f);
  EXPECT_EQ(job.seqs[0].sampler.top_k, 0);
  EXPECT_EQ(job.seqs[0].sampler.min_p, 0.0f);
  EXPECT_EQ(job.seqs[0].max_tokens, 64 - static_cast<int>(job.seqs[0].prompt.size()));
  EXPECT_EQ(job.logprobs, -1);
}

TEST(Api, ParametersReachTheSequences) {
  const ApiContext ctx = Context();
  auto r = ParseChatRequest(Chat({{"n", 3},
                                  {"seed", 7},
                                  {"temperature", 0.5},
                                  {"max_tokens", 1000},
                                  {"stop", {"a", "b"}},
                                  {"logit_bias", {{"5", 100}, {"6", -100}, {"7", 2.5}}},
                                  {"logprobs", true},
                                  {"top_logprobs", 2}}),
                            ctx);
  ASSERT_TRUE(std::holds_alternative<Job>(r)) << ErrorOf(r).message;
  const Job& job = std::get<Job>(r);
  ASSERT_EQ(job.seqs.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const SeqParams& p = job.seqs[i];
    EXPECT_EQ(p.sampler.seed, 7u + i);
    EXPECT_EQ(p.sampler.temperature, 0.5f);
    EXPECT_EQ(p.max_tokens, 64 - static_cast<int>(p.prompt.size()));  // capped by the context
    EXPECT_EQ(p.stop_strings, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(p.top_logprobs, 2);
    ASSERT_EQ(p.sampler.logit_bias.size(), 3u);
    EXPECT_EQ(p.sampler.logit_bias[0], (std::pair<int, float>{5, INFINITY}));
    EXPECT_EQ(p.sampler.logit_bias[1], (std::pair<int, float>{6, -INFINITY}));
    EXPECT_EQ(p.sampler.logit_bias[2], (std::pair<int, float>{7, 2.5f}));
  }
  auto c = ParseCompletionRequest(
      {{"model", "tiny"}, {"prompt", "Hello"}, {"logprobs", 3}, {"max_completion_tokens", 4}}, ctx);
  ASSERT_TRUE(std::holds_alternative<Job>(c)) << ErrorOf(c).message;
  const Job& cj = std::get<Job>(c);
  EXPECT_EQ(cj.seqs[0].prompt, (std::vector<int32_t>{128000, 9906}));
  EXPECT_EQ(cj.seqs[0].max_tokens, 4);
  EXPECT_EQ(cj.seqs[0].top_logprobs, 3);
}

TEST(Api, BadRequestsNameTheProblem) {
  const ApiContext ctx = Context();
  struct Case {
    json body;
    int status;
    std::string param;
  };
  const std::vector<Case> cases = {
      {{{"messages", {{{"role", "user"}, {"content", "x"}}}}}, 400, "model"},
      {Chat({{"model", "gpt-4"}}), 404, "model"},
      {Chat({{"temperature", 3}}), 400, "temperature"},
      {Chat({{"temperature", "hot"}}), 400, "temperature"},
      {Chat({{"top_p", 0}}), 400, "top_p"},
      {Chat({{"n", 5}}), 400, "n"},
      {Chat({{"max_tokens", 0}}), 400, "max_tokens"},
      {Chat({{"presence_penalty", -3}}), 400, "presence_penalty"},
      {Chat({{"logit_bias", {{"x", 1}}}}), 400, "logit_bias"},
      {Chat({{"logit_bias", {{"999999", 1}}}}), 400, "logit_bias"},
      {Chat({{"logit_bias", {{"5", 101}}}}), 400, "logit_bias"},
      {Chat({{"stop", {"a", "b", "c", "d", "e"}}}), 400, "stop"},
      {Chat({{"stop", 5}}), 400, "stop"},
      {Chat({{"stream_options", {{"include_usage", true}}}}), 400, "stream_options"},
      {Chat({{"top_logprobs", 2}}), 400, "top_logprobs"},
      {Chat({{"messages", "hi"}}), 400, "messages"},
      {Chat({{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}), 400, "messages[0].role"},
      {Chat({{"messages", {{{"role", "user"}, {"content", 5}}}}}), 400, "messages[0].content"},
      {Chat({{"messages", {{{"role", "user"}, {"content", Repeat(" hello", 100)}}}}}), 400,
       "messages"},
      {Chat({{"tools", {{{"type", "function"}}}}}), 400, "tools"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body.dump());
    const ApiError e = ErrorOf(ParseChatRequest(c.body, ctx));
    EXPECT_EQ(e.status, c.status);
    EXPECT_EQ(e.param, c.param);
    EXPECT_FALSE(e.message.empty());
  }
  const ApiError too_long = ErrorOf(ParseChatRequest(
      Chat({{"messages", {{{"role", "user"}, {"content", Repeat(" hello", 100)}}}}}), ctx));
  EXPECT_EQ(too_long.code, "context_length_exceeded");
  EXPECT_NE(too_long.message.find("maximum context length is 64"), std::string::npos);
  EXPECT_EQ(ErrorOf(ParseCompletionRequest({{"model", "tiny"}, {"prompt", {1, -1}}}, ctx)).param,
            "prompt");
  EXPECT_EQ(ErrorOf(ParseCompletionRequest({{"model", "tiny"}, {"prompt", "\xff"}}, ctx)).param,
            "prompt");
  const json e = ErrorJson({404, "no", "invalid_request_error", "model", "model_not_found"});
  EXPECT_EQ(e["error"]["code"], "model_not_found");
  EXPECT_EQ(e["error"]["param"], "model");
}

TEST(Api, StreamingChunksFollowOpenAIsOrder) {
  const ApiContext ctx = Context();
  auto r = ParseChatRequest(Chat({{"stream", true}, {"stream_options", {{"include_usage", true}}}}),
                            ctx);
  ASSERT_TRUE(std::holds_alternative<Job>(r));
  const Job job = std::get<Job>(r);
  Response response(job, ctx, "chatcmpl-x", 1);
  SeqEvent text;
  text.text = "Hel";
  auto chunks = response.Add(text);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(chunks[1]["choices"][0]["delta"]["content"], "Hel");
  EXPECT_TRUE(chunks[1]["usage"].is_null());
  SeqEvent done;
  done.done = true;
  done.finish = "length";
  done.prompt_tokens = 5;
  done.completion_tokens = 2;
  chunks = response.Add(done);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0]["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(chunks[0]["choices"][0]["delta"].empty());
  EXPECT_TRUE(response.done());
  const json usage = response.Final();
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 7);
}

}  // namespace
}  // namespace herd::server
