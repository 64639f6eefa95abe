#include "backend/openai_chat_client.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include "common/base64.h"
#include "common/stopwatch.h"
#include "common/strings.h"

namespace clipcap {

namespace {

constexpr double kMaxRetryWait = 30;

struct SplitUrl {
  std::string origin;  // scheme://host[:port]
  std::string path;    // the chat-completions path
};

SplitUrl split_url(const std::string& url) {
  const size_t scheme_end = url.find("://");
  const size_t path_start = url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  SplitUrl s;
  s.origin = url.substr(0, path_start);
  std::string path = path_start == std::string::npos ? "" : url.substr(path_start);
  while (!path.empty() && path.back() == '/') path.pop_back();
  const std::string suffix = "/chat/completions";
  if (path.size() < suffix.size() || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0)
    path += suffix;
  s.path = path;
  return s;
}

std::string seconds_text(double s) { return format_number(s, "%g") + " s"; }

// The error message an OpenAI-compatible server put in its answer ({"error": {"message"}} or
// {"message"}), else the start of the body.
std::string server_message(const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    if (j.contains("error") && j["error"].is_object() && j["error"].value("message", nlohmann::json()).is_string())
      return j["error"]["message"].get<std::string>();
    if (j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
    if (j.value("message", nlohmann::json()).is_string()) return j["message"].get<std::string>();
  }
  std::string text = body;
  std::replace_if(text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text;
}

}  // namespace

void EndpointOptions::validate(const std::string& flag) const {
  if (url.empty()) throw Error(flag + ": give the endpoint's base URL, e.g. http://localhost:8000/v1");
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
    throw Error(flag + " " + url + ": the URL must start with http:// or https://");
  if (model.empty()) throw Error(flag + " " + url + ": give the model the endpoint serves (--api-model / --summary-model)");
  if (!(timeout_s > 0)) throw Error("--timeout must be above 0 seconds (got " + format_number(timeout_s, "%g") + ")");
  if (retries < 0) throw Error("--retries must be 0 or more (got " + std::to_string(retries) + ")");
  if (!(retry_delay_s >= 0)) throw Error("--retry-delay must be 0 or more seconds");
}

std::string read_api_key_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot read the API key file");
  std::string key;
  std::getline(in, key);
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  key.erase(key.begin(), std::find_if(key.begin(), key.end(), not_space));
  key.erase(std::find_if(key.rbegin(), key.rend(), not_space).base(), key.end());
  if (key.empty()) throw Error(path + ": the API key file is empty (its first line is the key)");
  return key;
}

nlohmann::json image_part(const std::string& bytes, const std::string& mime) {
  return {{"type", "image_url"}, {"image_url", {{"url", "data:" + mime + ";base64," + base64_encode(std::string_view(bytes))}}}};
}

nlohmann::json text_part(const std::string& text) { return {{"type", "text"}, {"text", text}}; }

class OpenAIChatClient::Impl {
 public:
  explicit Impl(EndpointOptions opts) : opts_(std::move(opts)) {
    const SplitUrl s = split_url(opts_.url);
    path_ = s.path;
    url_ = s.origin + s.path;
    client_ = std::make_unique<httplib::Client>(s.origin);
    if (!client_->is_valid()) throw Error(opts_.url + ": not a usable endpoint URL");
    const auto seconds = [](double s) { return std::make_pair(time_t(s), time_t((s - double(time_t(s))) * 1e6)); };
    const auto [cs, cus] = seconds(std::min(opts_.timeout_s, 10.0));
    const auto [ts, tus] = seconds(opts_.timeout_s);
    client_->set_connection_timeout(cs, cus);
    client_->set_read_timeout(ts, tus);
    client_->set_write_timeout(ts, tus);
    client_->set_keep_alive(true);
    // httplib writes the headers and the body separately: with Nagle's algorithm the body waits
    // for the server's delayed ACK (40 ms), which made one request at a time 7x slower here.
    client_->set_tcp_nodelay(true);
    if (!opts_.api_key.empty()) client_->set_bearer_token_auth(opts_.api_key.c_str());
  }

  ChatAnswer complete(const nlohmann::json& content, const ChatParams& p) {
    nlohmann::json body = {{"model", opts_.model},
                           {"messages", nlohmann::json::array({{{"role", "user"}, {"content", content}}})},
                           {"temperature", p.temperature}};
    if (p.top_p < 1) body["top_p"] = p.top_p;
    if (p.max_tokens > 0) body["max_tokens"] = p.max_tokens;
    if (p.seed >= 0) body["seed"] = p.seed;
    const std::string text = body.dump();
    double wait = opts_.retry_delay_s;
    for (int attempt = 1;; ++attempt) {
      double retry_after = -1;
      try {
        ChatAnswer a = attempt_once(text, retry_after);
        a.attempts = attempt;
        return a;
      } catch (const TransientEndpointError& e) {
        if (attempt > opts_.retries) {
          if (opts_.retries == 0) throw;
          throw TransientEndpointError(std::string(e.what()) + " (" + std::to_string(attempt) + " attempts)");
        }
      }
      const double pause = std::min(kMaxRetryWait, retry_after >= 0 ? std::max(retry_after, wait) : wait);
      std::this_thread::sleep_for(std::chrono::duration<double>(pause));
      wait = std::min(kMaxRetryWait, wait * 2);
    }
  }

  const std::string& url() const { return url_; }

 private:
  ChatAnswer attempt_once(const std::string& body, double& retry_after) {
    const auto t0 = Clock::now();
    httplib::Result res = client_->Post(path_.c_str(), body, "application/json");
    if (!res) {
      const httplib::Error err = res.error();
      client_->stop();  // a half-read connection must not be reused
      if (err == httplib::Error::Connection || err == httplib::Error::ConnectionTimeout)
        throw TransientEndpointError(url_ + ": cannot connect (" +
                                     (err == httplib::Error::ConnectionTimeout ? "no connection within " + seconds_text(std::min(opts_.timeout_s, 10.0))
                                                                               : std::string("connection refused or host unreachable")) +
                                     ")");
      if (err == httplib::Error::SSLConnection || err == httplib::Error::SSLServerVerification ||
          err == httplib::Error::SSLLoadingCerts)
        throw BackendUnavailable(url_ + ": TLS failed (" + httplib::to_string(err) + ")");
      if (seconds_since(t0) >= opts_.timeout_s * 0.95)
        throw TransientEndpointError(url_ + ": no answer within the timeout of " + seconds_text(opts_.timeout_s));
      throw TransientEndpointError(url_ + ": the connection closed before an answer (" + httplib::to_string(err) + ")");
    }
    const int status = res->status;
    if (status == 408 || status == 429 || status >= 500) {
      if (res->has_header("Retry-After")) {
        try {
          retry_after = std::stod(res->get_header_value("Retry-After"));
        } catch (const std::exception&) {
        }
      }
      throw TransientEndpointError(url_ + ": HTTP " + std::to_string(status) + ": " + server_message(res->body));
    }
    if (status == 401 || status == 403)
      throw BackendUnavailable(url_ + ": HTTP " + std::to_string(status) + ", the API key was refused (--api-key-file): " +
                               server_message(res->body));
    if (status == 404 || status == 405)
      throw BackendUnavailable(url_ + ": HTTP " + std::to_string(status) +
                               ", not an OpenAI-compatible chat-completions path (give the base URL, e.g. "
                               "http://host:8000/v1; or the model name is unknown): " +
                               server_message(res->body));
    if (status < 200 || status >= 300)
      throw RejectedRequest(url_ + ": HTTP " + std::to_string(status) + ": " + server_message(res->body));
    return parse_answer(res->body);
  }

  ChatAnswer parse_answer(const std::string& body) const {
    const auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      throw BackendUnavailable(url_ + ": the answer is not JSON (is this an OpenAI-compatible endpoint?): " +
                               server_message(body));
    const auto& choices = j.value("choices", nlohmann::json());
    if (!choices.is_array() || choices.empty() || !choices[0].is_object())
      throw BackendUnavailable(url_ + ": the answer has no choices (not a chat-completions answer)");
    const auto& message = choices[0].value("message", nlohmann::json());
    if (!message.is_object() || !message.value("content", nlohmann::json()).is_string())
      throw BackendUnavailable(url_ + ": the answer's choices[0].message.content is not a string");
    ChatAnswer a;
    a.text = message["content"].get<std::string>();
    const auto& usage = j.value("usage", nlohmann::json());
    if (usage.is_object()) {
      if (usage.value("prompt_tokens", nlohmann::json()).is_number_integer()) a.prompt_tokens = usage["prompt_tokens"];
      if (usage.value("completion_tokens", nlohmann::json()).is_number_integer())
        a.completion_tokens = usage["completion_tokens"];
    }
    return a;
  }

  EndpointOptions opts_;
  std::string path_, url_;
  std::unique_ptr<httplib::Client> client_;
};

OpenAIChatClient::OpenAIChatClient(EndpointOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}
OpenAIChatClient::~OpenAIChatClient() = default;
OpenAIChatClient::OpenAIChatClient(OpenAIChatClient&&) noexcept = default;

ChatAnswer OpenAIChatClient::complete(const nlohmann::json& content, const ChatParams& params) {
  return impl_->complete(content, params);
}
const std::string& OpenAIChatClient::url() const { return impl_->url(); }

}  // namespace clipcap
