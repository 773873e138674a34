// herd serve's HTTP side: the OpenAI routes over cpp-httplib, API-key check, limits, SSE
// streaming, /health, /metrics, /tokenize, /detokenize, and the graceful shutdown sequence.
//
// The server listens before the model is loaded, so /health can say 503 while loading; every
// other route answers 503 until SetReady.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "base/status.h"
#include "server/api.h"
#include "server/engine.h"
#include "server/metrics.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace herd::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;      // 0: any free port (see port())
  std::string api_key;  // empty: no key needed
  size_t max_body_bytes = 1 << 20;
  std::string cors_origin;  // empty: no CORS headers (browsers on other origins are refused)
  int http_threads = 0;     // 0: enough for every slot and queue entry plus idle keep-alives
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, Metrics* metrics);
  ~HttpServer();

  // Binds the socket (error if the address is taken). port() is the bound port afterwards.
  Status Bind();
  int port() const { return port_; }
  // Serves until Stop(); call from its own thread.
  void Run();
  // The model is loaded: routes start answering. engine and ctx must outlive the server.
  void SetReady(Engine* engine, const ApiContext* ctx);
  // New requests get 503 from now on (requests already running continue).
  void BeginShutdown() { shutting_down_ = true; }
  // Waits until no generation request is being answered (streams written to the end), at most
  // `timeout`; returns whether none is.
  bool WaitIdle(std::chrono::milliseconds timeout);
  void Stop();

 private:
  void Routes();
  void Generate(bool chat, const httplib::Request& req, httplib::Response& res);

  ServerOptions options_;
  Metrics* metrics_;
  std::unique_ptr<httplib::Server> http_;
  int port_ = 0;
  std::atomic<Engine*> engine_{nullptr};
  const ApiContext* ctx_ = nullptr;
  std::atomic<bool> shutting_down_{false};
  std::shared_ptr<std::atomic<int>> in_flight_ = std::make_shared<std::atomic<int>>(0);
};

// Constant-time comparison (the time does not depend on where the strings differ).
bool SecureEquals(const std::string& a, const std::string& b);

}  // namespace herd::server
