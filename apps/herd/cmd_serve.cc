// herd serve [--model PATH] [--host H] [--port P] [--parallel N] [--ctx C] [--queue Q] ...
// An OpenAI-compatible server (src/server/). It listens first (GET /health answers 503 while the
// model loads), prints the memory budget, serves until SIGTERM or SIGINT, then stops accepting
// (503), gives running requests --shutdown-timeout seconds to finish, cancels the rest and exits 0.
#include <pthread.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "apps/herd/commands.h"
#include "apps/herd/model_common.h"
#include "base/paths.h"
#include "generate/generate.h"
#include "server/http_server.h"

namespace herd::app {
namespace {

struct ServeOptions {
  std::string model, alias, api_key, api_key_file, cache_type = "f16";
  server::ServerOptions http;
  server::EngineOptions engine;
  int shutdown_timeout = 10;
};

int RunServe(ServeOptions o) {
  // SIGTERM / SIGINT are taken by sigwait below: block them before any thread starts, so every
  // thread inherits the mask and none is interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  if (!o.api_key_file.empty()) {
    std::ifstream f(o.api_key_file);
    if (!f) return Fail("--api-key-file: cannot read " + o.api_key_file);
    std::getline(f, o.http.api_key);
    while (!o.http.api_key.empty() &&
           std::isspace(static_cast<unsigned char>(o.http.api_key.back())))
      o.http.api_key.pop_back();
    if (o.http.api_key.empty()) return Fail("--api-key-file: " + o.api_key_file + " is empty");
  } else {
    o.http.api_key = o.api_key;
  }
  if (o.engine.parallel < 1 || o.engine.parallel > 256)
    return Fail("--parallel must be between 1 and 256");
  if (o.engine.queue < 0) return Fail("--queue must be >= 0");
  if (o.engine.step_tokens < 1) return Fail("--step-tokens must be >= 1");
  const auto cache_type = ParseCacheTypeFlag(o.cache_type);
  if (!cache_type) return 1;
  o.engine.cache_type = *cache_type;
  std::string path = o.model;
  if (path.empty()) {
    path = DefaultModelPath();
    std::fprintf(stderr, "herd: no --model given; using the default model %s\n", path.c_str());
  }

  server::Metrics metrics;
  server::HttpServer http(o.http, &metrics);
  if (Status s = http.Bind(); !s.ok()) return Fail(s.message());
  std::fprintf(stderr, "herd: listening on http://%s:%d%s\n", o.http.host.c_str(), http.port(),
               o.http.api_key.empty() ? "" : " (API key required)");
  std::atomic<bool> http_done = false;
  std::thread http_thread([&] {
    http.Run();
    http_done = true;
  });
  auto stop_http = [&] {
    http.Stop();
    http_thread.join();
  };

  auto loaded =
      LoadForInference(path, o.engine.ctx, o.engine.cache_type, true, false, o.engine.parallel);
  if (!loaded) return stop_http(), 1;
  const Model& model = loaded->model;
  const Tokenizer& tok = *loaded->tokenizer;
  o.engine.ctx = loaded->ctx;
  server::ApiContext api;
  api.model_id = o.alias.empty() ? std::filesystem::path(path).filename().string() : o.alias;
  api.tokenizer = &tok;
  auto style = DetectChatStyle(model.chat_template, tok);
  if (!style.ok()) return stop_http(), Fail(style.status().message());
  api.chat_style = *style;
  api.add_bos = model.add_bos;
  api.ctx = o.engine.ctx;
  api.vocab_size = model.config.vocab_size;
  api.max_n = std::max(1, std::min(o.engine.parallel, 8));
  api.stop_ids = DefaultStopIds(model.config, tok);
  api.tool_call_id = tok.SpecialId("<|eom_id|>").value_or(-1);

  server::Engine engine(model, tok, o.engine, &metrics);
  std::fprintf(stderr,
               "herd: serving %s as \"%s\" (%s chat format): %d slots x %d positions, KV cache "
               "%.1f MiB (%s); queue %d; %d rows per step\n",
               path.c_str(), api.model_id.c_str(), ChatFormatName(style->format), o.engine.parallel,
               o.engine.ctx, engine.kv_cache_bytes() / 1048576.0, o.cache_type.c_str(),
               o.engine.queue, o.engine.step_tokens);
  http.SetReady(&engine, &api);
  std::fprintf(stderr, "herd: ready\n");

  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr,
               "herd: %s: no new requests; waiting up to %d s for %d running and %d "
               "queued sequences\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", o.shutdown_timeout, engine.active(),
               engine.queued());
  http.BeginShutdown();
  const bool all = engine.Drain(std::chrono::seconds(o.shutdown_timeout));
  if (!all) std::fprintf(stderr, "herd: cancelled the sequences still running\n");
  http.WaitIdle(std::chrono::seconds(2));  // the last events reach their clients
  http.Stop();
  // httplib lets idle keep-alive connections run out their timeout (5 s) before Run returns;
  // nothing is in flight any more, so do not wait for that.
  for (int i = 0; i < 50 && !http_done; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::fprintf(stderr, "herd: stopped\n");
  if (!http_done) {
    std::fflush(nullptr);
    std::_Exit(0);
  }
  http_thread.join();
  return 0;
}

}  // namespace

void AddServeCommand(CLI::App& app, int* exit_code) {
  static ServeOptions o;
  auto* c = app.add_subcommand("serve", "OpenAI-compatible HTTP server (continuous batching)");
  c->add_option("--model", o.model,
                "HF directory, Meta directory or .gguf file (default: $HERD_MODEL, else the "
                "SmolLM2-135M-Instruct GGUF scripts/setup installs)");
  c->add_option("--alias", o.alias, "Model id for the API (default: the file or directory name)");
  c->add_option("--host", o.http.host, "Address to bind (0.0.0.0: every interface)")
      ->capture_default_str();
  c->add_option("--port", o.http.port, "Port (0: any free one)")->capture_default_str();
  c->add_option("--parallel", o.engine.parallel, "Sequences decoded together (slots)")
      ->capture_default_str();
  c->add_option("--ctx", o.engine.ctx, "Positions per slot (0: the model's, at most 8192)")
      ->capture_default_str();
  c->add_option("--queue", o.engine.queue,
                "Sequences that may wait for a slot; beyond that, 429 with Retry-After")
      ->capture_default_str();
  c->add_option("--step-tokens", o.engine.step_tokens,
                "Rows per batched step: a newcomer's prompt is read in chunks that fit")
      ->capture_default_str();
  c->add_option("--threads", o.engine.threads, "Compute threads (0 = all cores)");
  c->add_option("--cache-type", o.cache_type, kCacheTypeHelp);
  c->add_option("--api-key", o.api_key, "Require 'Authorization: Bearer KEY' (not for /health)");
  c->add_option("--api-key-file", o.api_key_file, "Read the API key from the file's first line");
  c->add_option("--max-body", o.http.max_body_bytes, "Largest request body in bytes (else 413)")
      ->capture_default_str();
  c->add_option("--cors-origin", o.http.cors_origin,
                "Send CORS headers allowing this origin (default: none)");
  c->add_option("--shutdown-timeout", o.shutdown_timeout,
                "Seconds running requests get to finish after SIGTERM")
      ->capture_default_str();
  c->callback([exit_code] { *exit_code = RunServe(o); });
}

}  // namespace herd::app
