// Test helpers for HTTP: clipcap-serve as a process on a free loopback port, and an in-process
// fake OpenAI-compatible endpoint whose answers a test scripts (bad endpoints, failures, a
// summary model), recording what it was sent.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace clipcap::test {

// A clipcap-serve process (models/emoji-tiny unless extra_flags says --model) on a port of the
// kernel's choosing, stopped with SIGTERM.
class ServeProcess {
 public:
  // port 0: any free one.
  explicit ServeProcess(const std::string& extra_flags, const std::string& model = "", int port = 0);
  ~ServeProcess();
  int stop();  // SIGTERM; the exit status (-1: still running after 30 s, then killed)
  int port() const { return port_; }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::string log() const;  // its stderr
  // The JSON lines of its log that describe requests to `path` (with --log-requests, their "request").
  std::vector<nlohmann::json> logged_requests(const std::string& path = "/v1/chat/completions") const;
  const std::string& dir() const { return dir_; }

 private:
  bool ready();
  std::string dir_;
  int pid_ = -1, port_ = 0, exit_code_ = -1;
};

// An OpenAI-compatible endpoint in this process: every POST (any path) goes to `handler`, which
// fills the response; requests are recorded (path, headers' Authorization, parsed JSON body).
class FakeEndpoint {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&, int call)>;
  explicit FakeEndpoint(Handler handler);
  ~FakeEndpoint();
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int port() const { return port_; }
  struct Call {
    std::string path, authorization;
    nlohmann::json body;
  };
  std::vector<Call> calls() const;

  // A chat-completions answer with this text and usage.
  static std::string answer(const std::string& text, int prompt_tokens = 7, int completion_tokens = 3);

 private:
  Handler handler_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::vector<Call> calls_;
  std::atomic<int> count_{0};
};

// A loopback port nothing listens on (bound, then released).
int closed_port();

}  // namespace clipcap::test
