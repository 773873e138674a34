#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "server/connection.h"
#include "tokenizer/stream_decoder.h"

namespace herd::server {

using namespace std::chrono_literals;

bool SecureEquals(const std::string& a, const std::string& b) {
  // Walks the longer length whatever the contents, folding every difference into one value.
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? a[i] : 0, y = i < b.size() ? b[i] : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

namespace {

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void SendError(httplib::Response& res, const ApiError& e) { SendJson(res, e.status, ErrorJson(e)); }

std::string RandomId(const char* prefix) {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard lock(mu);
  return fmt::format("{}{:016x}", prefix, rng());
}

int64_t UnixTime() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The label /metrics counts a request under: its route, or "other" (unknown paths must not grow
// the metric without bound).
std::string RouteLabel(const std::string& path) {
  for (const char* route : {"/v1/chat/completions", "/v1/completions", "/v1/models", "/health",
                            "/metrics", "/tokenize", "/detokenize"})
    if (path == route) return route;
  return "other";
}

// Counts a request in flight for as long as it lives.
class InFlight {
 public:
  explicit InFlight(std::shared_ptr<std::atomic<int>> n) : n_(std::move(n)) { ++*n_; }
  ~InFlight() { --*n_; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::shared_ptr<std::atomic<int>> n_;
};

// Everything a streaming response needs after the handler returns.
struct Stream {
  explicit Stream(std::shared_ptr<std::atomic<int>> in_flight) : counted(std::move(in_flight)) {}
  InFlight counted;
  Job job;
  std::shared_ptr<Inbox> inbox = std::make_shared<Inbox>();
  std::optional<Response> response;
  bool finished = false;
};

bool WriteEvent(httplib::DataSink& sink, const std::string& data) {
  const std::string event = "data: " + data + "\n\n";
  return sink.write(event.data(), event.size());
}

}  // namespace

HttpServer::HttpServer(ServerOptions options, Metrics* metrics)
    : options_(std::move(options)), metrics_(metrics), http_(std::make_unique<httplib::Server>()) {
  // SO_REUSEADDR only: cpp-httplib's default also sets SO_REUSEPORT, with which a second server
  // on a port already in use starts without error and the kernel splits connections between
  // the two. A port in use must be an error.
  http_->set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof(yes));
  });
  Routes();
}

HttpServer::~HttpServer() = default;

Status HttpServer::Bind() {
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
    if (port_ <= 0) return Status::Errorf("cannot listen on {} (any port)", options_.host);
  } else {
    if (!http_->bind_to_port(options_.host, options_.port))
      return Status::Errorf("cannot listen on {}:{} (address in use, or not an address here?)",
                            options_.host, options_.port);
    port_ = options_.port;
  }
  return Status::Ok();
}

void HttpServer::Run() { http_->listen_after_bind(); }

void HttpServer::SetReady(Engine* engine, const ApiContext* ctx) {
  ctx_ = ctx;
  engine_ = engine;
}

bool HttpServer::WaitIdle(std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (*in_flight_ > 0) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

void HttpServer::Stop() { http_->stop(); }

void HttpServer::Routes() {
  httplib::Server& s = *http_;
  const int threads =
      options_.http_threads > 0 ? options_.http_threads : 256;  // idle threads cost little
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.set_payload_max_length(options_.max_body_bytes);
  s.set_keep_alive_timeout(5);

  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!options_.cors_origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", options_.cors_origin);
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      if (req.method == "OPTIONS") {
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    // httplib 0.11 does not apply the body limit to chunked bodies: ask for a length instead.
    if (req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos) {
      SendError(res, {411,
                      "Send the request body with a Content-Length (chunked request bodies "
                      "are not accepted)",
                      "invalid_request_error", "", ""});
      return httplib::Server::HandlerResponse::Handled;
    }
    if (options_.api_key.empty() || req.path == "/health")
      return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    const std::string given = auth.rfind(prefix, 0) == 0 ? auth.substr(prefix.size()) : "";
    if (SecureEquals(given, options_.api_key)) return httplib::Server::HandlerResponse::Unhandled;
    SendError(res, {401,
                    auth.empty() ? "No API key provided: send 'Authorization: Bearer KEY'"
                                 : "Incorrect API key provided",
                    "invalid_request_error", "", "invalid_api_key"});
    return httplib::Server::HandlerResponse::Handled;
  });

  // Errors httplib produces itself (unknown route, body too large) get an OpenAI error body too.
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.content_length_ > 0) return;
    std::string message = fmt::format("HTTP {}", res.status);
    if (res.status == 404) message = fmt::format("Unknown route: {} {}", req.method, req.path);
    if (res.status == 413) message = "The request body is too large";
    if (res.status == 405) message = fmt::format("Method {} not allowed here", req.method);
    SendError(res, {res.status, message, "invalid_request_error", "", ""});
  });
  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        SendError(res, {500, what, "server_error", "", ""});
      });
  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_->CountRequest(RouteLabel(req.path), res.status);
    std::fprintf(stderr, "herd: %s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
  });

  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (shutting_down_) return SendJson(res, 503, {{"status", "shutting down"}});
    if (!engine_) return SendJson(res, 503, {{"status", "loading model"}});
    SendJson(res, 200, {{"status", "ok"}});
  });

  // The rest need the model.
  auto ready = [this](httplib::Response& res) {
    if (shutting_down_) {
      SendError(res, {503, "The server is shutting down", "server_error", "", ""});
      return false;
    }
    if (!engine_) {
      SendError(res, {503, "The model is still loading; retry shortly", "server_error", "", ""});
      return false;
    }
    return true;
  };
  s.Get("/v1/models", [this, ready](const httplib::Request&, httplib::Response& res) {
    if (!ready(res)) return;
    SendJson(res, 200,
             {{"object", "list"},
              {"data", json::array({{{"id", ctx_->model_id},
                                     {"object", "model"},
                                     {"created", UnixTime()},
                                     {"owned_by", "herd"}}})}});
  });
  s.Get(R"(/v1/models/(.+))", [this, ready](const httplib::Request& req, httplib::Response& res) {
    if (!ready(res)) return;
    if (req.matches[1] != ctx_->model_id)
      return SendError(res, {404,
                             fmt::format("The model '{}' does not exist; this server serves '{}'",
                                         std::string(req.matches[1]), ctx_->model_id),
                             "invalid_request_error", "model", "model_not_found"});
    SendJson(res, 200,
             {{"id", ctx_->model_id},
              {"object", "model"},
              {"created", UnixTime()},
              {"owned_by", "herd"}});
  });
  s.Get("/metrics", [this, ready](const httplib::Request&, httplib::Response& res) {
    Engine* e = engine_;  // also while shutting down: the drain is worth watching
    if (!e && !ready(res)) return;
    res.set_content(
        metrics_->Render({e->queued(), e->active(), e->options().parallel, e->kv_cache_bytes()}),
        "text/plain; version=0.0.4");
  });
  auto parse_body = [](const httplib::Request& req, httplib::Response& res) -> std::optional<json> {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      SendError(res,
                {400, "The request body is not a JSON object", "invalid_request_error", "", ""});
      return std::nullopt;
    }
    return body;
  };
  s.Post("/tokenize",
         [this, ready, parse_body](const httplib::Request& req, httplib::Response& res) {
           if (!ready(res)) return;
           auto body = parse_body(req, res);
           if (!body) return;
           auto content = body->find("content");
           if (content == body->end() || !content->is_string())
             return SendError(
                 res, {400, "'content' must be a string", "invalid_request_error", "content", ""});
           const std::string text = content->get<std::string>();
           EncodeOptions options;
           auto add = body->find("add_special");
           if (add != body->end() && !add->is_boolean())
             return SendError(res, {400, "'add_special' must be a boolean", "invalid_request_error",
                                    "add_special", ""});
           options.add_bos = add != body->end() && add->get<bool>() && ctx_->add_bos;
           SendJson(res, 200, {{"tokens", ctx_->tokenizer->Encode(text, options)}});
         });
  s.Post("/detokenize", [this, ready, parse_body](const httplib::Request& req,
                                                  httplib::Response& res) {
    if (!ready(res)) return;
    auto body = parse_body(req, res);
    if (!body) return;
    auto tokens = body->find("tokens");
    std::vector<int32_t> ids;
    if (tokens == body->end() || !tokens->is_array())
      return SendError(res, {400, "'tokens' must be an array of token ids", "invalid_request_error",
                             "tokens", ""});
    for (const json& id : *tokens) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= ctx_->vocab_size)
        return SendError(
            res, {400, fmt::format("'tokens' must hold token ids in [0, {})", ctx_->vocab_size),
                  "invalid_request_error", "tokens", ""});
      ids.push_back(id.get<int32_t>());
    }
    auto text = ctx_->tokenizer->Decode(ids);
    if (!text.ok())
      return SendError(res, {400, text.status().message(), "invalid_request_error", "tokens", ""});
    SendJson(res, 200, {{"content", SanitizeUtf8(*text)}});
  });
  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    const bool chat = std::string(path) == "/v1/chat/completions";
    s.Post(path, [this, ready, chat](const httplib::Request& req, httplib::Response& res) {
      if (ready(res)) Generate(chat, req, res);
    });
  }
}

void HttpServer::Generate(bool chat, const httplib::Request& req, httplib::Response& res) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded())
    return SendError(res,
                     {400, "The request body is not valid JSON", "invalid_request_error", "", ""});
  auto parsed = chat ? ParseChatRequest(body, *ctx_) : ParseCompletionRequest(body, *ctx_);
  if (auto* e = std::get_if<ApiError>(&parsed)) return SendError(res, *e);
  auto st = std::make_shared<Stream>(in_flight_);
  st->job = std::move(std::get<Job>(parsed));
  st->response.emplace(st->job, *ctx_, RandomId(chat ? "chatcmpl-" : "cmpl-"), UnixTime());
  switch (engine_.load()->Submit(st->job.seqs, st->inbox)) {
    case SubmitResult::kOk:
      break;
    case SubmitResult::kQueueFull:
      res.set_header("Retry-After", "1");
      return SendError(res, {429,
                             "The server is busy: every slot and queue place is taken; retry "
                             "shortly",
                             "rate_limit_exceeded", "", "queue_full"});
    case SubmitResult::kShuttingDown:
      return SendError(res, {503, "The server is shutting down", "server_error", "", ""});
  }
  if (!st->job.stream) {
    // The engine ends every sequence (done event), so this loop ends. A client that hangs up
    // meanwhile cancels the request (its slots are freed at the next step).
    const int fd = FindConnection(req.remote_addr, req.remote_port, req.local_port);
    auto next_check = std::chrono::steady_clock::now();
    while (!st->response->done()) {
      if (auto e = st->inbox->Pop(250ms)) st->response->Add(*e);
      if (fd >= 0 && std::chrono::steady_clock::now() >= next_check) {
        next_check += 250ms;
        if (PeerClosed(fd)) st->inbox->Cancel();
      }
    }
    const bool failed = !st->response->error().empty();
    // Written by a provider that holds st, so the request counts as in flight until the body is
    // out (shutdown waits for it).
    auto body = std::make_shared<std::string>(
        failed ? ErrorJson({0, st->response->error(), "server_error", "", ""}).dump()
               : st->response->Final().dump());
    // Cancelled by a drain that ran out of time: the server is going away (503), not broken.
    res.status = !failed ? 200 : st->response->error() == "cancelled" ? 503 : 500;
    res.set_content_provider(
        body->size(), "application/json",
        [body, st](size_t offset, size_t length, httplib::DataSink& sink) {
          return sink.write(body->data() + offset, length);
        },
        [st](bool) {});
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [st](size_t, httplib::DataSink& sink) {
        auto e = st->inbox->Pop(500ms);
        if (!e) {
          // Nothing to say yet (queued, long prompt): an SSE comment, which also finds out
          // whether the client is still there.
          if (!sink.write(": keep-alive\n\n", 14)) {
            st->inbox->Cancel();
            return false;
          }
          return true;
        }
        for (const json& chunk : st->response->Add(*e)) {
          if (!WriteEvent(sink, chunk.dump())) {
            st->inbox->Cancel();
            return false;
          }
        }
        if (!st->response->error().empty()) {
          st->inbox->Cancel();  // the other choices end too
          WriteEvent(sink, ErrorJson({500, st->response->error(), "server_error", "", ""}).dump());
          st->finished = true;
          sink.done();
          return true;
        }
        if (st->response->done()) {
          if (st->job.include_usage) WriteEvent(sink, st->response->Final().dump());
          WriteEvent(sink, "[DONE]");
          st->finished = true;
          sink.done();
        }
        return true;
      },
      [st](bool) {
        if (!st->finished) st->inbox->Cancel();  // client gone: free the slots
      });
}

}  // namespace herd::server
