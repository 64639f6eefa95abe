// One connection to an OpenAI-compatible chat-completions endpoint (vLLM, sglang, lmdeploy,
// clipcap-serve, api.openai.com): a request out, the answer's text and token usage back, with
// bounded retries and a timeout per attempt.
//
//   clipcap::EndpointOptions e;  e.url = "http://gpu-box:8000/v1";  e.model = "llava-v1.6";
//   clipcap::OpenAIChatClient client(e);               // not thread-safe: one per worker thread
//   clipcap::ChatAnswer a = client.complete({clipcap::text_part("Describe it."), clipcap::image_part(jpeg, "image/jpeg")});
//
// Failures, each "<endpoint URL>: <problem>":
//   retried  connection refused or reset, no answer within the timeout, 408, 429, 5xx: up to
//            `retries` more attempts, waiting retry_delay_s, then twice that, ... (at most 30 s; a
//            Retry-After header is honoured up to that), then TransientEndpointError;
//   the item's  400, 413, 415, 422 (the endpoint refused this request: too large an image, ...):
//            RejectedRequest, not retried;
//   the run's  401, 403 (the API key), 404, 405 (not an OpenAI-compatible path), a 2xx answer that
//            is not JSON or has no choices[0].message.content: BackendUnavailable
//            (backend/caption_backend.h), for callers to stop on.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "backend/caption_backend.h"

namespace clipcap {

struct EndpointOptions {
  std::string url;            // base URL as OpenAI clients take it (http://host:8000/v1), or the
                              // full .../chat/completions URL
  std::string model;          // "model" of every request
  std::string api_key;        // sent as "Authorization: Bearer ..." when not empty
  double timeout_s = 120;     // per attempt: connecting, sending, and waiting for the answer
  int retries = 3;            // attempts after the first, for the retried failures above
  double retry_delay_s = 1;   // the first wait between attempts; doubles each time

  void validate(const std::string& flag_prefix) const;  // Error naming the flag (--endpoint, --summary-endpoint)
};

// The API key from a file (its first line, whitespace trimmed); Error naming the file when it is
// missing or empty.
std::string read_api_key_file(const std::string& path);

// The sampling fields of one request.
struct ChatParams {
  double temperature = 0;  // 0: greedy
  double top_p = 1;        // sent when below 1
  int max_tokens = 0;      // 0: not sent (the server's default)
  int64_t seed = -1;       // sent when >= 0
};

struct ChatAnswer {
  std::string text;
  int64_t prompt_tokens = 0, completion_tokens = 0;  // usage, when the endpoint reports it
  int attempts = 1;
};

class TransientEndpointError : public Error {
 public:
  using Error::Error;
};
class RejectedRequest : public Error {
 public:
  using Error::Error;
};

class OpenAIChatClient {
 public:
  explicit OpenAIChatClient(EndpointOptions opts);
  ~OpenAIChatClient();
  OpenAIChatClient(OpenAIChatClient&&) noexcept;

  // One user message with these content parts ([{"type": "text", ...}, {"type": "image_url", ...}]).
  ChatAnswer complete(const nlohmann::json& content, const ChatParams& params = {});

  const std::string& url() const;  // the chat-completions URL requests go to

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// A content part carrying encoded image bytes as a data: URL (mime: image/jpeg, image/png).
nlohmann::json image_part(const std::string& bytes, const std::string& mime);
nlohmann::json text_part(const std::string& text);

}  // namespace clipcap
