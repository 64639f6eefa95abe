#include "tests/serve_test_support.h"

#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "common/atomic_file.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;

namespace clipcap::test {

ServeProcess::ServeProcess(const std::string& extra_flags, const std::string& model, int port) {
  dir_ = temp_dir("serve");
  const std::string cmd = tool("clipcap-serve") + " --model " + (model.empty() ? source_path("models/emoji-tiny") : model) +
                          " --port " + std::to_string(port) + " --threads 1 " + extra_flags;
  // A subshell waits for the server and writes its exit status; the server's own pid is kept. Both
  // files appear by rename, whole: a file the shell has opened but not yet written reads empty.
  run("(" + cmd + " > " + dir_ + "/out 2> " + dir_ + "/err & echo $! > " + dir_ + "/pid.tmp; mv " + dir_ + "/pid.tmp " +
      dir_ + "/pid; wait $!; echo $? > " + dir_ + "/exit.tmp; mv " + dir_ + "/exit.tmp " + dir_ + "/exit) > /dev/null 2>&1 &");
  for (int i = 0; i < 600 && !(ready() && fs::exists(dir_ + "/pid")); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  pid_ = fs::exists(dir_ + "/pid") ? std::stoi(read_file(dir_ + "/pid")) : -1;
}

ServeProcess::~ServeProcess() { stop(); }

int ServeProcess::stop() {
  if (pid_ <= 0) return exit_code_;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 600 && !fs::exists(dir_ + "/exit"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  exit_code_ = fs::exists(dir_ + "/exit") ? std::stoi(read_file(dir_ + "/exit")) : -1;
  if (exit_code_ == -1) kill(pid_, SIGKILL);
  pid_ = -1;
  return exit_code_;
}

std::string ServeProcess::log() const { return read_file(dir_ + "/err"); }

std::vector<nlohmann::json> ServeProcess::logged_requests(const std::string& path) const {
  std::vector<nlohmann::json> out;
  const std::string text = log();
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    const auto j = nlohmann::json::parse(text.substr(start, nl - start), nullptr, false);
    if (j.is_object() && j.value("path", "") == path) out.push_back(j);
    start = nl + 1;
  }
  return out;
}

bool ServeProcess::ready() {
  const std::string err = fs::exists(dir_ + "/err") ? read_file(dir_ + "/err") : "";
  const size_t at = err.find("listening on http://127.0.0.1:");
  if (at == std::string::npos || err.find("ready:") == std::string::npos) return false;
  port_ = std::stoi(err.substr(at + 30));
  return true;
}

FakeEndpoint::FakeEndpoint(Handler handler) : handler_(std::move(handler)), server_(std::make_unique<httplib::Server>()) {
  server_->Post(R"(.*)", [this](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      calls_.push_back({req.path, req.get_header_value("Authorization"), nlohmann::json::parse(req.body, nullptr, false)});
    }
    handler_(req, res, count_++);
  });
  port_ = server_->bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

FakeEndpoint::~FakeEndpoint() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::vector<FakeEndpoint::Call> FakeEndpoint::calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

std::string FakeEndpoint::answer(const std::string& text, int prompt_tokens, int completion_tokens) {
  return nlohmann::json{{"id", "x"},
                        {"object", "chat.completion"},
                        {"choices", {{{"index", 0},
                                      {"message", {{"role", "assistant"}, {"content", text}}},
                                      {"finish_reason", "stop"}}}},
                        {"usage",
                         {{"prompt_tokens", prompt_tokens},
                          {"completion_tokens", completion_tokens},
                          {"total_tokens", prompt_tokens + completion_tokens}}}}
      .dump();
}

int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace clipcap::test
