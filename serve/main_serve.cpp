// clipcap-serve: a caption server with OpenAI's chat-completions API (serve/caption_server.h).
//
//   clipcap-serve --model models/emoji-default [--host 127.0.0.1] [--port 8080]
//       [--api-key-file F | CLIPCAP_API_KEY=...] [--allow-file-dir DIR] [--max-batch 32] ...
//
// Listens first (GET /health answers 503 "loading" while the model loads), then serves until
// SIGTERM or Ctrl-C, which drain: new requests get 503, queued ones are answered, then it exits 0.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "backend/backend_flags.h"
#include "common/atomic_file.h"
#include "common/cli_flags.h"
#include "common/cli_main.h"
#include "common/error.h"
#include "common/interrupt.h"
#include "serve/caption_server.h"

namespace {

const char* kProgram = "clipcap-serve";

std::string read_key(const std::string& file) {
  std::string key;
  if (!file.empty()) {
    key = clipcap::read_file(file);
  } else if (const char* env = std::getenv("CLIPCAP_API_KEY")) {
    key = env;
  } else {
    return "";
  }
  key = key.substr(0, key.find_first_of("\r\n"));
  if (key.empty()) throw clipcap::Error((file.empty() ? "CLIPCAP_API_KEY" : file) + ": the API key is empty");
  return key;
}

int run(int argc, char** argv) {
  CLI::App app{"Serve captions over HTTP with OpenAI's chat-completions API, batching concurrent requests.", kProgram};
  clipcap::BackendFlags backend;
  clipcap::add_backend_flags(app, backend);
  clipcap::ServerOptions o;
  std::string key_file, name;
  int64_t max_body = static_cast<int64_t>(o.max_body_bytes), timeout = o.request_timeout.count();
  int wait_ms = static_cast<int>(o.scheduler.max_wait.count());
  const std::string g = "Server";
  app.add_option("--host", o.host, "address to listen on (loopback by default: say 0.0.0.0 to serve the network)")
      ->capture_default_str()->group(g);
  app.add_option("--port", o.port, "TCP port (0: any free one, printed at start)")->capture_default_str()->group(g);
  app.add_option("--served-model-name", name, "the model id clients ask for (default: the model directory's name)")
      ->group(g);
  app.add_option("--api-key-file", key_file, "require Authorization: Bearer <the file's first line> (or set CLIPCAP_API_KEY)")
      ->check(CLI::ExistingFile)->group(g);
  app.add_option("--allow-file-dir", o.limits.file_root, "accept file:// image URLs below this directory")
      ->check(CLI::ExistingDirectory)->group(g);
  app.add_option("--max-body-bytes", max_body, "largest request body (413 above)")->capture_default_str()->group(g);
  app.add_option("--max-image-pixels", o.limits.max_image_pixels, "largest image, width x height (413 above)")
      ->capture_default_str()->group(g);
  app.add_option("--max-tokens", o.limits.max_tokens, "most tokens a request may ask for (422 above)")
      ->capture_default_str()->group(g);
  app.add_option("--max-batch", o.scheduler.max_batch, "captions generated together at most")->capture_default_str()->group(g);
  app.add_option("--batch-wait-ms", wait_ms, "how long a batch waits for more requests")->capture_default_str()->group(g);
  app.add_option("--max-queue", o.scheduler.max_queue, "requests waiting at most (then 429 with Retry-After)")
      ->capture_default_str()->group(g);
  app.add_option("--request-timeout", timeout, "seconds a request may wait for its caption (then 504)")
      ->capture_default_str()->group(g);
  app.add_flag("--log-requests", o.log_requests, "log each request's text parts and image sizes too")->group(g);
  app.add_option("--http-threads", o.http_threads, "connections served at once")->capture_default_str()->group(g);
  if (auto code = clipcap::parse_flags(app, argc, argv)) return *code;
  if (max_body < 1 || timeout < 1 || wait_ms < 0 || o.scheduler.max_batch < 1 || o.scheduler.max_queue < 1)
    throw clipcap::Error("--max-body-bytes, --request-timeout, --max-batch and --max-queue must be positive");
  o.max_body_bytes = static_cast<size_t>(max_body);
  o.request_timeout = std::chrono::seconds(timeout);
  o.scheduler.max_wait = std::chrono::milliseconds(wait_ms);
  o.api_key = read_key(key_file);
  if (name.empty()) name = std::filesystem::path(backend.model).filename().string();
  if (name.empty()) name = std::filesystem::path(backend.model).parent_path().filename().string();

  const std::atomic<bool>& stop = clipcap::install_interrupt_handler(std::string(kProgram) + ": stopping: answering the requests already queued");
  auto server = std::make_unique<clipcap::CaptionServer>(o, name);
  server->listen_in_background();
  std::cerr << kProgram << ": listening on http://" << o.host << ":" << server->port() << " (loading " << backend.model
            << ")" << std::endl;
  clipcap::LoadedBackend loaded = clipcap::load_backend(backend, app);
  // usage.prompt_tokens: the image's prefix embeddings are the prompt GPT-2 reads.
  server->set_backend(loaded.backend.get(), loaded.decoding, loaded.backend->describe().value("prefix_tokens", int64_t{0}));
  std::cerr << kProgram << ": ready: model '" << name << "'" << (o.api_key.empty() ? "" : ", API key required") << std::endl;
  while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server->stop();
  server->wait();
  std::cerr << kProgram << ": stopped" << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clipcap::run_main(kProgram, [&] { return run(argc, argv); });
}
