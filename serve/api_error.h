// An error an API request ends with: its HTTP status and OpenAI's error JSON,
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "messages", "code": null}}
// so OpenAI clients raise their usual exceptions. Messages name what was wrong with the request and
// never carry internals (paths, stack, library messages) of the server.
//
//   throw clipcap::ApiError(400, "messages[0].content[1].image_url.url is not valid base64", "messages");
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace clipcap {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string param = "", std::string code = "");

  int status() const { return status_; }
  // invalid_request_error (4xx), authentication_error (401), rate_limit_error (429), server_error (5xx)
  std::string type() const;
  // A short name for metrics and logs: bad_json, bad_image, too_large, unauthorized, ...
  const std::string& code() const { return code_; }
  nlohmann::json to_json() const;

 private:
  int status_;
  std::string param_, code_;
};

}  // namespace clipcap
