#include "serve/caption_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <ctime>
#include <iostream>

#include "common/error.h"
#include "serve/api_error.h"

namespace clipcap {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Compares every byte whatever the first difference, so the time taken says nothing about the key.
bool same_key(const std::string& given, const std::string& key) {
  unsigned char diff = given.size() == key.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ key[i % key.size()]);
  return diff == 0;
}

std::string finish_reason(const Caption& c) { return c.scored_tokens > c.tokens ? "stop" : "length"; }

}  // namespace

// One request as the handlers see it: httplib's request and response, and what the log line says.
struct CaptionServer::Exchange {
  const httplib::Request& req;
  httplib::Response& res;
  std::string id, endpoint, error;
  Clock::time_point start = Clock::now();
  int batch_rows = 0;
  json request = json();  // log_requests: {"model", "text", "images": [[width, height], ...]}
};

CaptionServer::CaptionServer(ServerOptions opts, std::string model_name, std::ostream* log)
    : opts_(std::move(opts)),
      model_(std::move(model_name)),
      log_(log ? log : &std::cerr),
      http_(std::make_unique<httplib::Server>()) {
  const int threads = std::max(1, opts_.http_threads);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_->set_payload_max_length(opts_.max_body_bytes);
  // A connection holds a pool thread while kept alive; closing it after httplib's default of 5
  // requests races with a client already sending the next one (a lost request under load).
  http_->set_keep_alive_max_count(1000);
  http_->set_tcp_nodelay(true);  // answers are written in pieces: do not hold them for delayed ACKs
  // Debian's httplib listens with a backlog of 5: a burst of clients connecting at once overflows
  // it and some connections fail. Remember the listening socket to listen again with a real one.
  // SO_REUSEADDR only: httplib's default SO_REUSEPORT would let a second server share a port that
  // is in use, silently splitting the clients between the two.
  http_->set_socket_options([this](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_socket_ = sock;
  });
  http_->set_read_timeout(static_cast<time_t>(opts_.read_timeout.count()), 0);
  http_->set_write_timeout(static_cast<time_t>(opts_.read_timeout.count()), 0);
  routes();
}

CaptionServer::~CaptionServer() {
  if (listener_.joinable()) {
    http_->stop();
    listener_.join();
  }
}

void CaptionServer::listen_in_background() {
  port_ = opts_.port == 0 ? http_->bind_to_any_port(opts_.host) : (http_->bind_to_port(opts_.host, opts_.port) ? opts_.port : -1);
  if (port_ <= 0)
    throw Error("cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) +
                " (in use, or not an address of this machine)");
  if (listen_socket_ >= 0) ::listen(listen_socket_, SOMAXCONN);
  listener_ = std::thread([this] { http_->listen_after_bind(); });
}

void CaptionServer::set_backend(CaptionBackend* backend, const DecodeOptions& defaults,
                                int64_t prompt_tokens_per_image) {
  defaults_ = defaults;
  prompt_tokens_per_image_ = prompt_tokens_per_image;
  scheduler_ = std::make_unique<CaptionScheduler>(*backend, opts_.scheduler, &metrics_);
  ready_ = true;
}

void CaptionServer::stop() {
  if (draining_.exchange(true)) return;
  if (scheduler_) scheduler_->stop();
  const auto deadline = Clock::now() + opts_.drain_timeout;
  while (in_flight_ > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  http_->stop();
}

void CaptionServer::wait() {
  if (listener_.joinable()) listener_.join();
}

void CaptionServer::log_line(const Exchange& x) const {
  json j = {{"time", static_cast<int64_t>(std::time(nullptr))},
            {"id", x.id},
            {"method", x.req.method},
            {"path", x.req.path},
            {"status", x.res.status},
            {"latency_ms", std::chrono::duration<double, std::milli>(Clock::now() - x.start).count()}};
  if (x.batch_rows > 0) j["batch_rows"] = x.batch_rows;
  if (!x.request.is_null()) j["request"] = x.request;
  if (!x.error.empty()) j["error"] = x.error;
  std::lock_guard<std::mutex> lock(log_mu_);
  *log_ << j.dump() << "\n";
  log_->flush();
}

Ticket CaptionServer::submit(CaptionRequest request) {
  if (!request.model.empty() && request.model != model_)
    throw ApiError(404, "the model '" + request.model + "' does not exist; this server has '" + model_ + "'", "model",
                   "model_not_found");
  return scheduler_->submit(std::move(request));
}

Answer CaptionServer::caption(Exchange& x, CaptionRequest request) {
  Ticket t = submit(std::move(request));
  if (t.answer.wait_for(opts_.request_timeout) != std::future_status::ready) {
    *t.cancelled = true;
    throw ApiError(504, "no caption within " + std::to_string(opts_.request_timeout.count()) + " s", "", "timeout");
  }
  Answer a = t.answer.get();
  x.batch_rows = a.batch_rows;
  return a;
}

void CaptionServer::chat_completions(Exchange& x) {
  const std::string type = x.req.get_header_value("Content-Type");
  if (type.rfind("application/json", 0) != 0)
    throw ApiError(415, "Content-Type must be application/json", "", "unsupported_media_type");
  CaptionRequest request = parse_chat_request(x.req.body, defaults_, opts_.limits);
  if (opts_.log_requests) {
    json sizes = json::array();
    for (const Image& img : request.images) sizes.push_back({img.width, img.height});
    x.request = {{"model", request.model}, {"text", request.text}, {"images", sizes}};
  }
  const int64_t prompt = prompt_tokens_per_image_ * static_cast<int64_t>(request.images.size());
  const int64_t created = static_cast<int64_t>(std::time(nullptr));
  const int n = request.n;
  if (!request.stream) {
    Answer a = caption(x, std::move(request));
    int64_t completion = 0;
    for (const Caption& c : a.choices) completion += c.scored_tokens;
    json choices = json::array();
    for (size_t i = 0; i < a.choices.size(); ++i)
      choices.push_back({{"index", i},
                         {"message", {{"role", "assistant"}, {"content", a.choices[i].text}}},
                         {"logprobs", nullptr},
                         {"finish_reason", finish_reason(a.choices[i])}});
    x.res.set_content(json{{"id", x.id},
                           {"object", "chat.completion"},
                           {"created", created},
                           {"model", model_},
                           {"choices", choices},
                           {"usage",
                            {{"prompt_tokens", prompt},
                             {"completion_tokens", completion},
                             {"total_tokens", prompt + completion}}}}
                          .dump(),
                      "application/json");
    return;
  }
  stream_chat(x, submit(std::move(request)), created, prompt, n);
}

// Server-sent events as the captions are written: deltas of each choice's text, its finish, the
// usage, then [DONE]. The stream holds the server open (draining waits for it) until it ends.
void CaptionServer::stream_chat(Exchange& x, Ticket ticket, int64_t created, int64_t prompt, int n) {
  struct State {
    Ticket ticket;
    std::string id;
    int64_t created, prompt, completion = 0;
    int n, finished = 0;
    std::vector<bool> started;
  };
  auto st = std::make_shared<State>(State{std::move(ticket), x.id, created, prompt, 0, n, 0, std::vector<bool>(n, false)});
  ++in_flight_;
  x.res.set_header("Cache-Control", "no-cache");
  x.res.set_chunked_content_provider(
      "text/event-stream",
      [this, st](size_t, httplib::DataSink& sink) {
        auto send = [&](const json& choices, const json& extra = json::object()) {
          json j = {{"id", st->id}, {"object", "chat.completion.chunk"}, {"created", st->created}, {"model", model_},
                    {"choices", choices}};
          for (const auto& [k, v] : extra.items()) j[k] = v;
          const std::string event = "data: " + j.dump() + "\n\n";
          return sink.write(event.data(), event.size());
        };
        StreamEvent e;
        while (st->finished < st->n) {
          if (!st->ticket.stream->pop(e, opts_.request_timeout) || !e.error.empty()) {
            const std::string error = "data: " + ApiError(e.error.empty() ? 504 : 500,
                                                          e.error.empty() ? "no caption within the request timeout" : e.error,
                                                          "", e.error.empty() ? "timeout" : "internal")
                                                     .to_json()
                                                     .dump() +
                                      "\n\n";
            sink.write(error.data(), error.size());
            sink.done();
            return true;
          }
          const size_t c = static_cast<size_t>(e.choice);
          json delta = json::object();
          if (!st->started[c]) delta["role"] = "assistant", st->started[c] = true;
          if (!e.delta.empty()) delta["content"] = e.delta;
          if (delta.size() > 0 &&
              !send(json::array({{{"index", e.choice}, {"delta", delta}, {"finish_reason", nullptr}}})))
            return false;  // the client left
          if (e.finished) {
            ++st->finished;
            st->completion += e.caption.scored_tokens;
            if (!send(json::array({{{"index", e.choice}, {"delta", json::object()}, {"finish_reason", finish_reason(e.caption)}}})))
              return false;
          }
        }
        send(json::array(), {{"usage",
                              {{"prompt_tokens", st->prompt},
                               {"completion_tokens", st->completion},
                               {"total_tokens", st->prompt + st->completion}}}});
        const std::string done = "data: [DONE]\n\n";
        sink.write(done.data(), done.size());
        sink.done();
        return true;
      },
      [this, st](bool) {
        *st->ticket.cancelled = true;  // a stream cut short is not worth finishing
        --in_flight_;
      });
}

void CaptionServer::captions(Exchange& x) {
  std::string bytes;
  const std::string type = x.req.get_header_value("Content-Type");
  if (x.req.is_multipart_form_data()) {
    for (const char* name : {"image", "file"})
      if (x.req.has_file(name)) {
        bytes = x.req.get_file_value(name).content;
        break;
      }
    if (bytes.empty()) throw ApiError(400, "multipart body without an 'image' (or 'file') field", "image", "no_image");
  } else if (type.rfind("image/", 0) == 0 || type == "application/octet-stream") {
    bytes = x.req.body;
  } else {
    throw ApiError(415, "send the image bytes with an image/* Content-Type, or multipart/form-data", "",
                   "unsupported_media_type");
  }
  std::map<std::string, std::string> params;
  for (const auto& [k, v] : x.req.params) params[k] = v;
  CaptionRequest request = parse_caption_request(bytes, params, defaults_, opts_.limits);
  Answer a = caption(x, std::move(request));
  json captions = json::array();
  int64_t tokens = 0;
  for (const Caption& c : a.choices) {
    captions.push_back({{"text", c.text}, {"mean_logprob", c.scored_tokens > 0 ? json(c.mean_logprob()) : json(nullptr)},
                        {"finish_reason", finish_reason(c)}});
    if (c.rerank.candidates > 0) captions.back()["rerank"] = rerank_json(c.rerank);
    tokens += c.scored_tokens;
  }
  x.res.set_content(json{{"id", x.id}, {"model", model_}, {"caption", a.choices.front().text}, {"captions", captions},
                         {"usage", {{"completion_tokens", tokens}}}}
                        .dump(),
                    "application/json");
}

void CaptionServer::routes() {
  // Every captioning endpoint: readiness, the key, errors in OpenAI's shape, metrics, the log line.
  auto api = [this](const std::string& endpoint, void (CaptionServer::*handler)(Exchange&)) {
    return [this, endpoint, handler](const httplib::Request& req, httplib::Response& res) {
      Exchange x{req, res, {}, {}, {}};
      x.endpoint = endpoint;
      x.id = (endpoint == "chat" ? "chatcmpl-" : "caption-") + std::to_string(next_id_++);
      ++in_flight_;
      try {
        if (!opts_.api_key.empty()) {
          const std::string auth = req.get_header_value("Authorization");
          if (auth.rfind("Bearer ", 0) != 0 || !same_key(auth.substr(7), opts_.api_key))
            throw ApiError(401, "missing or wrong API key (Authorization: Bearer ...)", "", "unauthorized");
        }
        if (draining_) throw ApiError(503, "the server is shutting down", "", "shutting_down");
        if (!ready_) throw ApiError(503, "the model is still loading", "", "loading");
        (this->*handler)(x);
        res.status = 200;
      } catch (const ApiError& e) {
        res.status = e.status();
        if (e.status() == 429 || e.status() == 503) res.set_header("Retry-After", "1");
        res.set_content(e.to_json().dump(), "application/json");
        x.error = e.code().empty() ? e.type() : e.code();
        metrics_.error(x.error);
      } catch (const std::exception& e) {
        res.status = 500;
        res.set_content(ApiError(500, "internal error while captioning (see the server's log)", "", "internal").to_json().dump(),
                        "application/json");
        x.error = "internal";
        metrics_.error(x.error);
        std::lock_guard<std::mutex> lock(log_mu_);
        *log_ << "clipcap-serve: " << x.id << ": internal error: " << e.what() << "\n";
      }
      --in_flight_;
      metrics_.request(endpoint, res.status, std::chrono::duration<double>(Clock::now() - x.start).count());
      log_line(x);
    };
  };
  http_->Post("/v1/chat/completions", api("chat", &CaptionServer::chat_completions));
  http_->Post("/v1/captions", api("captions", &CaptionServer::captions));
  http_->Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(json{{"object", "list"},
                         {"data", json::array({{{"id", model_}, {"object", "model"}, {"created", 0}, {"owned_by", "clipcap"}}})}}
                        .dump(),
                    "application/json");
  });
  http_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const char* state = draining_ ? "shutting_down" : ready_ ? "ok" : "loading";
    res.status = ready_ && !draining_ ? 200 : 503;
    res.set_content(json{{"status", state}}.dump(), "application/json");
  });
  http_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    if (scheduler_) metrics_.set_queue_depth(static_cast<int64_t>(scheduler_->depth()));
    res.set_content(metrics_.prometheus_text(), "text/plain; version=0.0.4");
  });
  // What httplib answers itself (unknown path, body too large, ...) also in OpenAI's shape.
  http_->set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = "error";
    if (res.status == 404) message = "no such endpoint: " + req.method + " " + req.path;
    if (res.status == 413) message = "the body is larger than " + std::to_string(opts_.max_body_bytes) + " bytes";
    if (res.status == 400) message = "malformed HTTP request";
    const std::string code = res.status == 413 ? "body_too_large" : res.status == 404 ? "no_such_endpoint" : "bad_http";
    res.set_content(ApiError(res.status, message, "", code).to_json().dump(), "application/json");
    metrics_.error(code);
    metrics_.request("other", res.status, 0.0);
    Exchange x{req, res, "-", "other", code};
    log_line(x);
  });
  http_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content(ApiError(500, "internal error", "", "internal").to_json().dump(), "application/json");
  });
}

}  // namespace clipcap
