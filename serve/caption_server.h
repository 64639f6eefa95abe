// The HTTP side of clipcap-serve (cpp-httplib: a Debian package, a small library, blocking sockets on a
// thread pool, which is all a CPU-bound captioner behind a batching queue needs; Boost.Beast
// would bring an async model the model thread cannot use):
//
//   POST /v1/chat/completions   OpenAI chat completions with image_url parts (stream: SSE)
//   POST /v1/captions           image bytes (or multipart field "image"/"file"), options in the query
//   GET  /v1/models             the one model served
//   GET  /health                200 once the model is loaded, 503 before and while shutting down
//   GET  /metrics               Prometheus text (serve/server_metrics.h)
//
// Errors have OpenAI's JSON shape (serve/api_error.h); each request is logged as one JSON line
// (no image data, no key; with log_requests its text parts and image sizes). stop() drains: new requests get 503, queued ones are answered.
//
//   clipcap::CaptionServer server(opts, "clipcap-emoji");
//   server.listen_in_background();                  // /health says 503 "loading"
//   server.set_backend(&backend, decoding, 4);      // ready
//   server.wait();                                  // until stop() (SIGTERM)
#pragma once

#include <atomic>
#include <chrono>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "backend/caption_backend.h"
#include "serve/caption_request.h"
#include "serve/caption_scheduler.h"
#include "serve/server_metrics.h"

namespace httplib {
class Server;
}

namespace clipcap {

struct ServerOptions {
  std::string host = "127.0.0.1";               // --host: loopback unless the operator says otherwise
  int port = 8080;                              // --port (0: any free port)
  std::string api_key;                          // from --api-key-file or CLIPCAP_API_KEY; "" = no auth
  size_t max_body_bytes = 20 << 20;             // --max-body-bytes
  std::chrono::seconds request_timeout{60};     // --request-timeout
  std::chrono::seconds read_timeout{10};        // a client that sends nothing for this long is dropped
  std::chrono::seconds drain_timeout{30};       // stop(): how long in-flight requests may finish
  bool log_requests = false;                    // --log-requests: log lines also hold each request's model,
                                                //   text parts and image sizes (what a client sent, for audits)
  int http_threads = 128;                       // --http-threads: connections served at once (a kept-alive
                                                //   connection holds one; more wait for a free thread)
  RequestLimits limits;
  SchedulerOptions scheduler;
};

class CaptionServer {
 public:
  CaptionServer(ServerOptions opts, std::string model_name, std::ostream* log = nullptr);
  ~CaptionServer();

  // Binds host:port (Error naming them when it cannot) and serves on a thread of its own.
  void listen_in_background();
  int port() const { return port_; }
  // The model is loaded: answer captioning requests from now on. usage.prompt_tokens counts
  // prompt_tokens_per_image (the prefix length) per image.
  void set_backend(CaptionBackend* backend, const DecodeOptions& defaults, int64_t prompt_tokens_per_image);
  // 503 for new requests, queued ones answered (at most drain_timeout), then the listener stops.
  void stop();
  void wait();  // returns once the listener has stopped

 private:
  void routes();
  struct Exchange;
  void chat_completions(Exchange& x);
  void captions(Exchange& x);
  Ticket submit(CaptionRequest request);
  Answer caption(Exchange& x, CaptionRequest request);
  void stream_chat(Exchange& x, Ticket ticket, int64_t created, int64_t prompt, int n);
  void log_line(const Exchange& x) const;

  ServerOptions opts_;
  std::string model_;
  int64_t prompt_tokens_per_image_ = 0;
  std::ostream* log_;
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<CaptionScheduler> scheduler_;
  DecodeOptions defaults_;
  ServerMetrics metrics_;
  std::atomic<bool> ready_{false}, draining_{false};
  std::atomic<int64_t> in_flight_{0}, next_id_{1};
  int port_ = 0;
  int listen_socket_ = -1;
  std::thread listener_;
  mutable std::mutex log_mu_;
};

}  // namespace clipcap
