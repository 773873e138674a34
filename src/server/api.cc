#include "server/api.h"

#include <charconv>
#include <cmath>
#include <random>

#include "tokenizer/stream_decoder.h"

namespace herd::server {

json ErrorJson(const ApiError& e) {
  return {{"error",
           {{"message", e.message},
            {"type", e.type},
            {"param", e.param.empty() ? json(nullptr) : json(e.param)},
            {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
}

std::string TokenText(const Tokenizer& tok, int id) { return SanitizeUtf8(tok.TokenBytes(id)); }

namespace {

ApiError Invalid(std::string param, std::string message) {
  return {400, std::move(message), "invalid_request_error", std::move(param), ""};
}

// Reads optional typed fields; the first problem is kept in error.
class Fields {
 public:
  explicit Fields(const json& body) : body_(body) {}
  std::optional<ApiError> error;

  const json* Get(const char* name) const {
    auto it = body_.find(name);
    return it == body_.end() || it->is_null() ? nullptr : &*it;
  }
  std::optional<double> Number(const char* name, double lo, double hi) {
    const json* v = Get(name);
    if (!v || error) return std::nullopt;
    if (!v->is_number()) return Fail(name, fmt::format("'{}' must be a number", name));
    const double x = v->get<double>();
    if (!(x >= lo && x <= hi))
      return Fail(name, fmt::format("'{}' must be between {} and {}; got {}", name, lo, hi, x));
    return x;
  }
  std::optional<int64_t> Integer(const char* name, int64_t lo, int64_t hi) {
    const json* v = Get(name);
    if (!v || error) return std::nullopt;
    if (!v->is_number_integer())
      return Fail<int64_t>(name, fmt::format("'{}' must be an integer", name));
    const int64_t x =
        v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX ? INT64_MAX : v->get<int64_t>();
    if (x < lo || x > hi)
      return Fail<int64_t>(name,
                           fmt::format("'{}' must be between {} and {}; got {}", name, lo, hi, x));
    return x;
  }
  std::optional<bool> Bool(const char* name) {
    const json* v = Get(name);
    if (!v || error) return std::nullopt;
    if (!v->is_boolean()) return Fail<bool>(name, fmt::format("'{}' must be a boolean", name));
    return v->get<bool>();
  }
  template <typename T = double>
  std::optional<T> Fail(const std::string& param, std::string message) {
    if (!error) error = Invalid(param, std::move(message));
    return std::nullopt;
  }

 private:
  const json& body_;
};

// Fields both endpoints share: model, n, stream, sampling, stop, max_tokens. Fills job and
// params (the template every choice's sequence is made from); the prompt is already in params.
std::optional<ApiError> ParseCommon(const json& body, const ApiContext& ctx, Job* job,
                                    SeqParams* params) {
  Fields f(body);
  const json* model = f.Get("model");
  if (!model) return Invalid("model", "'model' is required");
  if (!model->is_string()) return Invalid("model", "'model' must be a string");
  job->model = model->get<std::string>();
  if (job->model != ctx.model_id)
    return ApiError{404,
                    fmt::format("The model '{}' does not exist; this server serves '{}'",
                                job->model, ctx.model_id),
                    "invalid_request_error", "model", "model_not_found"};
  job->stream = f.Bool("stream").value_or(false);
  if (const json* so = f.Get("stream_options")) {
    if (!job->stream)
      return Invalid("stream_options", "'stream_options' is only allowed when 'stream' is true");
    if (!so->is_object()) return Invalid("stream_options", "'stream_options' must be an object");
    Fields sf(*so);
    job->include_usage = sf.Bool("include_usage").value_or(false);
    if (sf.error) return sf.error;
  }
  const int n = static_cast<int>(f.Integer("n", 1, ctx.max_n).value_or(1));
  SamplerParams& s = params->sampler;
  s = SamplerParams{};
  s.temperature = static_cast<float>(f.Number("temperature", 0, 2).value_or(1.0));
  s.top_p = static_cast<float>(f.Number("top_p", 0, 1).value_or(1.0));
  if (!f.error && s.top_p <= 0)
    return Invalid("top_p", "'top_p' must be greater than 0 (use temperature 0 for greedy)");
  s.top_k = static_cast<int>(f.Integer("top_k", 0, ctx.vocab_size).value_or(0));
  s.min_p = static_cast<float>(f.Number("min_p", 0, 1).value_or(0.0));
  s.repeat_penalty = static_cast<float>(f.Number("repeat_penalty", 0.01, 10).value_or(1.0));
  s.presence_penalty = static_cast<float>(f.Number("presence_penalty", -2, 2).value_or(0.0));
  s.frequency_penalty = static_cast<float>(f.Number("frequency_penalty", -2, 2).value_or(0.0));
  std::optional<int64_t> seed = f.Integer("seed", INT64_MIN, INT64_MAX);
  if (f.error) return f.error;
  if (const json* bias = f.Get("logit_bias")) {
    if (!bias->is_object())
      return Invalid("logit_bias", "'logit_bias' must map token ids (strings) to numbers");
    for (const auto& [key, value] : bias->items()) {
      int id = -1;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (ec != std::errc() || end != key.data() + key.size() || id < 0 || id >= ctx.vocab_size)
        return Invalid("logit_bias", fmt::format("logit_bias key '{}' is not a token id in [0, {})",
                                                 key, ctx.vocab_size));
      if (!value.is_number() || !(value.get<double>() >= -100 && value.get<double>() <= 100))
        return Invalid("logit_bias", fmt::format("logit_bias for token {} must be a number in "
                                                 "[-100, 100]",
                                                 id));
      // As OpenAI documents: -100 bans a token and 100 makes it the only choice.
      const double b = value.get<double>();
      s.logit_bias.push_back({static_cast<int>(id), b <= -100  ? -INFINITY
                                                    : b >= 100 ? INFINITY
                                                               : static_cast<float>(b)});
    }
  }
  if (const json* stop = f.Get("stop")) {
    if (stop->is_string()) {
      params->stop_strings.push_back(stop->get<std::string>());
    } else if (stop->is_array() && stop->size() <= 4) {
      for (const json& x : *stop) {
        if (!x.is_string()) return Invalid("stop", "'stop' must be a string or strings");
        params->stop_strings.push_back(x.get<std::string>());
      }
    } else {
      return Invalid("stop", "'stop' must be a string or an array of at most 4 strings");
    }
  }
  for (const std::string& st : params->stop_strings)
    if (SanitizeUtf8(st) != st) return Invalid("stop", "'stop' strings must be valid UTF-8");
  const int prompt = static_cast<int>(params->prompt.size());
  const char* prompt_param = job->chat ? "messages" : "prompt";
  if (prompt == 0) return Invalid(prompt_param, "the prompt encodes to no tokens");
  if (prompt >= ctx.ctx)
    return ApiError{400,
                    fmt::format("This model's maximum context length is {} tokens. However, your "
                                "prompt has {} tokens, leaving no room for a completion. Shorten "
                                "the prompt or start the server with a larger --ctx.",
                                ctx.ctx, prompt),
                    "invalid_request_error", prompt_param, "context_length_exceeded"};
  std::optional<int64_t> max_tokens = f.Integer("max_completion_tokens", 1, INT32_MAX);
  if (!max_tokens) max_tokens = f.Integer("max_tokens", 1, INT32_MAX);
  if (f.error) return f.error;
  // Capped by the room the context leaves (finish_reason "length" says it was cut).
  params->max_tokens =
      static_cast<int>(std::min<int64_t>(max_tokens.value_or(INT32_MAX), ctx.ctx - prompt));
  params->stop_ids = ctx.stop_ids;
  params->tool_call_id = ctx.tool_call_id;
  params->top_logprobs = job->logprobs;
  if (Status st = ValidateSamplerParams(s, ctx.vocab_size); !st.ok())
    return Invalid("", st.message());
  const uint64_t base_seed = seed ? static_cast<uint64_t>(*seed) : std::random_device{}();
  for (int i = 0; i < n; ++i) {
    job->seqs.push_back(*params);
    job->seqs.back().sampler.seed = base_seed + i;
  }
  return std::nullopt;
}

std::optional<ApiError> RejectUnsupported(const json& body) {
  Fields f(body);
  for (const char* name : {"tools", "functions"}) {
    const json* v = f.Get(name);
    if (v && !(v->is_array() && v->empty()))
      return Invalid(name, fmt::format("'{}' is not supported by this server", name));
  }
  if (const json* rf = f.Get("response_format")) {
    if (!rf->is_object() || rf->value("type", "") != "text")
      return Invalid("response_format", "only response_format {\"type\": \"text\"} is supported");
  }
  if (f.Bool("echo").value_or(false)) return Invalid("echo", "'echo' is not supported");
  if (const json* b = f.Get("best_of"); b && *b != 1)
    return Invalid("best_of", "'best_of' other than 1 is not supported");
  if (f.Get("suffix")) return Invalid("suffix", "'suffix' is not supported");
  return f.error;
}

// Message content: a string, or an array of text parts.
std::optional<std::string> MessageText(const json& content) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) return std::nullopt;
  std::string text;
  for (const json& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
        !part["text"].is_string())
      return std::nullopt;
    text += part["text"].get<std::string>();
  }
  return text;
}

}  // namespace

std::variant<Job, ApiError> ParseChatRequest(const json& body, const ApiContext& ctx) {
  if (!body.is_object()) return Invalid("", "the request body must be a JSON object");
  if (auto e = RejectUnsupported(body)) return *e;
  Job job;
  job.chat = true;
  Fields f(body);
  const bool logprobs = f.Bool("logprobs").value_or(false);
  const std::optional<int64_t> top = f.Integer("top_logprobs", 0, 20);
  if (f.error) return *f.error;
  if (top && !logprobs) return Invalid("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  job.logprobs = logprobs ? static_cast<int>(top.value_or(0)) : -1;
  const json* messages = f.Get("messages");
  if (!messages || !messages->is_array() || messages->empty())
    return Invalid("messages", "'messages' must be a non-empty array of messages");
  std::vector<ChatMessage> dialog;
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string param = fmt::format("messages[{}]", i);
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      return Invalid(param, param + " must be an object with a string 'role'");
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      return Invalid(param + ".role",
                     fmt::format("{}.role '{}' is not one of system, developer, user, assistant, "
                                 "tool",
                                 param, role));
    auto text = MessageText(m.contains("content") ? m["content"] : json(nullptr));
    if (!text)
      return Invalid(param + ".content",
                     param + ".content must be a string or an array of text parts");
    if (SanitizeUtf8(*text) != *text)
      return Invalid(param + ".content", param + ".content is not valid UTF-8");
    dialog.push_back({role, std::move(*text)});
  }
  auto ids = EncodeChatDialog(ctx.chat_style, *ctx.tokenizer, dialog);
  if (!ids.ok()) return ApiError{500, ids.status().message(), "server_error", "", ""};
  SeqParams params;
  params.prompt = std::move(ids).value();
  if (auto e = ParseCommon(body, ctx, &job, &params)) return *e;
  return job;
}

std::variant<Job, ApiError> ParseCompletionRequest(const json& body, const ApiContext& ctx) {
  if (!body.is_object()) return Invalid("", "the request body must be a JSON object");
  if (auto e = RejectUnsupported(body)) return *e;
  Job job;
  Fields f(body);
  job.logprobs = static_cast<int>(f.Integer("logprobs", 0, 5).value_or(-1));
  if (f.error) return *f.error;
  const json* prompt = f.Get("prompt");
  SeqParams params;
  // A string, a one-string array, or token ids.
  const json* p = prompt;
  if (p && p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
  if (p && p->is_string()) {
    const std::string text = p->get<std::string>();
    if (SanitizeUtf8(text) != text) return Invalid("prompt", "'prompt' is not valid UTF-8");
    EncodeOptions options;
    options.add_bos = ctx.add_bos;
    params.prompt = ctx.tokenizer->Encode(text, options);
  } else if (p && p->is_array() && !p->empty() && (*p)[0].is_number_integer()) {
    for (const json& id : *p) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= ctx.vocab_size)
        return Invalid("prompt", fmt::format("'prompt' token ids must be integers in [0, {})",
                                             ctx.vocab_size));
      params.prompt.push_back(id.get<int>());
    }
  } else {
    return Invalid("prompt", "'prompt' must be a string or an array of token ids");
  }
  if (auto e = ParseCommon(body, ctx, &job, &params)) return *e;
  return job;
}

Response::Response(const Job& job, const ApiContext& ctx, std::string id, int64_t created)
    : job_(job), ctx_(ctx), id_(std::move(id)), created_(created), choices_(job.seqs.size()) {}

json Response::LogprobsJson(const std::vector<TokenLogprob>& lps, size_t text_offset) const {
  const Tokenizer& tok = *ctx_.tokenizer;
  auto bytes = [&](int id) {  // 0..255 (char may be signed)
    std::vector<int> b;
    for (unsigned char c : tok.TokenBytes(id)) b.push_back(c);
    return b;
  };
  if (job_.chat) {
    json content = json::array();
    for (const TokenLogprob& lp : lps) {
      json top = json::array();
      for (const auto& [id, l] : lp.top)
        top.push_back({{"token", TokenText(tok, id)}, {"logprob", l}, {"bytes", bytes(id)}});
      content.push_back({{"token", TokenText(tok, lp.id)},
                         {"logprob", lp.logprob},
                         {"bytes", bytes(lp.id)},
                         {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  json tokens = json::array(), token_logprobs = json::array(), top = json::array(),
       offsets = json::array();
  for (const TokenLogprob& lp : lps) {
    const std::string text = TokenText(tok, lp.id);
    tokens.push_back(text);
    token_logprobs.push_back(lp.logprob);
    json alternatives = json::object();
    for (const auto& [id, l] : lp.top) alternatives[TokenText(tok, id)] = l;
    top.push_back(alternatives);
    offsets.push_back(text_offset);
    text_offset += text.size();
  }
  return {{"tokens", tokens},
          {"token_logprobs", token_logprobs},
          {"top_logprobs", top},
          {"text_offset", offsets}};
}

json Response::Chunk(int index, json delta_or_text, const json& logprobs,
                     const std::string& finish) const {
  json choice = {{"index", index},
                 {"logprobs", logprobs},
                 {"finish_reason", finish.empty() ? json(nullptr) : json(finish)}};
  choice[job_.chat ? "delta" : "text"] = std::move(delta_or_text);
  json chunk = {{"id", id_},
                {"object", job_.chat ? "chat.completion.chunk" : "text_completion"},
                {"created", created_},
                {"model", ctx_.model_id},
                {"system_fingerprint", "herd"},
                {"choices", json::array({choice})}};
  if (job_.include_usage) chunk["usage"] = nullptr;
  return chunk;
}

std::vector<json> Response::Add(const SeqEvent& e) {
  std::vector<json> out;
  Choice& c = choices_.at(e.index);
  const json no_logprobs = nullptr;
  if (job_.stream && job_.chat && !c.started && e.error.empty()) {
    out.push_back(Chunk(e.index, {{"role", "assistant"}, {"content", ""}}, no_logprobs, ""));
    c.started = true;
  }
  if (!e.text.empty() || !e.logprobs.empty()) {
    if (job_.stream) {
      const json lp = job_.logprobs >= 0 ? LogprobsJson(e.logprobs, c.text.size()) : no_logprobs;
      out.push_back(Chunk(e.index, job_.chat ? json{{"content", e.text}} : json(e.text), lp, ""));
    }
    c.text += e.text;
    c.logprobs.insert(c.logprobs.end(), e.logprobs.begin(), e.logprobs.end());
  }
  if (e.done) {
    ++finished_;
    if (!e.error.empty() && error_.empty()) error_ = e.error;
    c.finish = e.finish;
    prompt_tokens_ = e.prompt_tokens;
    cached_tokens_ = e.cached_tokens;
    completion_tokens_ += e.completion_tokens;
    if (job_.stream && e.error.empty())
      out.push_back(Chunk(e.index, job_.chat ? json::object() : json(""), no_logprobs, e.finish));
  }
  return out;
}

json Response::Usage() const {
  return {{"prompt_tokens", prompt_tokens_},
          {"completion_tokens", completion_tokens_},
          {"total_tokens", prompt_tokens_ + completion_tokens_},
          {"prompt_tokens_details", {{"cached_tokens", cached_tokens_}}}};
}

json Response::Final() const {
  if (job_.stream) {
    return {{"id", id_},
            {"object", job_.chat ? "chat.completion.chunk" : "text_completion"},
            {"created", created_},
            {"model", ctx_.model_id},
            {"system_fingerprint", "herd"},
            {"choices", json::array()},
            {"usage", Usage()}};
  }
  json choices = json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    json choice = {{"index", i},
                   {"finish_reason", c.finish},
                   {"logprobs", job_.logprobs >= 0 ? LogprobsJson(c.logprobs, 0) : json(nullptr)}};
    if (job_.chat)
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    else
      choice["text"] = c.text;
    choices.push_back(choice);
  }
  return {{"id", id_},
          {"object", job_.chat ? "chat.completion" : "text_completion"},
          {"created", created_},
          {"model", ctx_.model_id},
          {"system_fingerprint", "herd"},
          {"choices", choices},
          {"usage", Usage()}};
}

}  // namespace herd::server
