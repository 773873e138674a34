// The OpenAI wire format: request parsing and validation, response and stream-chunk JSON, error
// JSON. No I/O here, so every rule can be tested on its own.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "server/engine.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace herd::server {

using nlohmann::json;

// An error as OpenAI sends it: {"error": {"message", "type", "param", "code"}} with an HTTP status.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the offending field, or empty
  std::string code;   // machine-readable, or empty
};
json ErrorJson(const ApiError& e);

// What requests are checked against.
struct ApiContext {
  std::string model_id;  // the name /v1/models lists and requests must use
  const Tokenizer* tokenizer = nullptr;
  ChatStyle chat_style;
  bool add_bos = true;  // completions: prepend BOS as the model's tokenizer does
  int ctx = 0;          // positions per sequence
  int vocab_size = 0;
  int max_n = 8;  // the most choices one request may ask for
  std::vector<int> stop_ids;
  int tool_call_id = -1;  // <|eom_id|> if the vocabulary has it
};

// A validated request, ready for the engine.
struct Job {
  bool chat = false;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int logprobs = -1;           // chat: top_logprobs when logprobs is true; completions: logprobs
  std::string model;
  std::vector<SeqParams> seqs;  // n of them (seeds seed, seed+1, ...)
};

std::variant<Job, ApiError> ParseChatRequest(const json& body, const ApiContext& ctx);
std::variant<Job, ApiError> ParseCompletionRequest(const json& body, const ApiContext& ctx);

// Assembles the answer of a job from its sequences' events.
class Response {
 public:
  Response(const Job& job, const ApiContext& ctx, std::string id, int64_t created);
  // Folds one event in; for streaming, returns the SSE data payloads (JSON) to send now.
  std::vector<json> Add(const SeqEvent& e);
  bool done() const { return finished_ == static_cast<int>(choices_.size()); }
  // The first error a sequence reported, if any.
  const std::string& error() const { return error_; }
  // Non-streaming: the whole response. Streaming: the final usage chunk (include_usage).
  json Final() const;
  json Usage() const;

 private:
  struct Choice {
    std::string text;
    std::string finish;
    std::vector<TokenLogprob> logprobs;
    bool started = false;  // streaming: the role delta was sent
  };
  json Chunk(int index, json delta_or_text, const json& logprobs, const std::string& finish) const;
  json LogprobsJson(const std::vector<TokenLogprob>& lps, size_t text_offset) const;

  const Job& job_;
  const ApiContext& ctx_;
  std::string id_;
  int64_t created_;
  std::vector<Choice> choices_;
  int finished_ = 0, prompt_tokens_ = 0, completion_tokens_ = 0, cached_tokens_ = 0;
  std::string error_;
};

// A token's text for logprobs: its bytes with invalid UTF-8 replaced, and the raw bytes.
std::string TokenText(const Tokenizer& tok, int id);

}  // namespace herd::server
