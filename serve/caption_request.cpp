#include "serve/caption_request.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>

#include "common/base64.h"
#include "common/error.h"
#include "common/json_util.h"
#include "serve/api_error.h"

namespace fs = std::filesystem;

namespace clipcap {

namespace {

using json = nlohmann::json;

Image decode(const std::vector<uint8_t>& bytes, const std::string& where, const RequestLimits& limits) {
  ImageReadLimits l;
  l.max_pixels = limits.max_image_pixels;
  try {
    return decode_image(bytes, where, l);
  } catch (const Error& e) {
    const std::string m = e.what();
    if (m.find("more than the limit") != std::string::npos) throw ApiError(413, m, "messages", "image_too_large");
    throw ApiError(400, m, "messages", "bad_image");
  }
}

// A file:// URL's image, only below the directory the operator allows.
Image file_image(const std::string& url, const std::string& where, const RequestLimits& limits) {
  if (limits.file_root.empty())
    throw ApiError(400, where + ": file:// URLs are not allowed on this server (--allow-file-dir)", "messages",
                   "file_not_allowed");
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(limits.file_root, ec);
  const fs::path path = fs::weakly_canonical(fs::path(url.substr(7)), ec);
  const auto rel = path.lexically_relative(root);
  if (ec || rel.empty() || *rel.begin() == "..")
    throw ApiError(403, where + ": the path is outside the directory this server allows", "messages",
                   "file_not_allowed");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ApiError(400, where + ": no readable file at that path", "messages", "bad_image");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return decode(bytes, where, limits);
}

Image url_image(const std::string& url, const std::string& where, const RequestLimits& limits) {
  if (url.rfind("file://", 0) == 0) return file_image(url, where, limits);
  if (url.rfind("data:", 0) != 0)
    throw ApiError(400, where + ": only data: URLs (and file:// where allowed) are accepted; this server fetches nothing",
                   "messages", "unsupported_url");
  const size_t comma = url.find(',');
  const std::string header = url.substr(5, comma == std::string::npos ? std::string::npos : comma - 5);
  if (comma == std::string::npos || header.size() < 7 || header.compare(header.size() - 7, 7, ";base64") != 0)
    throw ApiError(400, where + ": a data: URL must be data:image/...;base64,...", "messages", "bad_data_url");
  if (header.rfind("image/", 0) != 0)
    throw ApiError(415, where + ": media type '" + header.substr(0, header.size() - 7) + "' is not an image",
                   "messages", "unsupported_media_type");
  auto bytes = base64_decode(std::string_view(url).substr(comma + 1));
  if (!bytes) throw ApiError(400, where + ": the data: URL is not valid base64", "messages", "bad_base64");
  return decode(*bytes, where, limits);
}

template <typename T>
T field(const json& j, const char* key, const std::string& where, const char* kind) {
  const json& v = j.at(key);
  if (!json_number_fits<T>(v)) throw ApiError(400, where + key + " must be " + kind, key, "wrong_type");
  try {
    return v.get<T>();
  } catch (const json::exception&) {
    throw ApiError(400, where + key + " must be " + kind, key, "wrong_type");
  }
}

// The options both request shapes share, applied to the model's defaults.
struct Options {
  std::optional<int> max_tokens, n;
  std::optional<double> temperature, top_p;
  std::optional<uint64_t> seed;
};

void apply(const Options& o, const DecodeOptions& defaults, const RequestLimits& limits, CaptionRequest& r) {
  r.decoding = defaults;
  if (o.max_tokens) {
    if (*o.max_tokens < 1 || *o.max_tokens > limits.max_tokens)
      throw ApiError(422, "max_tokens must be between 1 and " + std::to_string(limits.max_tokens), "max_tokens",
                     "out_of_range");
    r.decoding.max_len = *o.max_tokens;
    r.decoding.min_len = std::min(r.decoding.min_len, r.decoding.max_len);
  }
  if (o.temperature) {
    if (*o.temperature < 0 || *o.temperature > 2)
      throw ApiError(422, "temperature must be between 0 and 2", "temperature", "out_of_range");
    if (*o.temperature == 0) {
      r.decoding.strategy = "greedy";
    } else {
      r.decoding.strategy = "sample";
      r.decoding.temperature = static_cast<float>(*o.temperature);
    }
  }
  if (o.top_p) {
    if (!(*o.top_p > 0 && *o.top_p <= 1)) throw ApiError(422, "top_p must be in (0, 1]", "top_p", "out_of_range");
    r.decoding.top_p = static_cast<float>(*o.top_p);
  }
  if (o.seed) r.decoding.seed = *o.seed;
  if (o.n) {
    if (*o.n < 1 || *o.n > limits.max_n)
      throw ApiError(422, "n must be between 1 and " + std::to_string(limits.max_n), "n", "out_of_range");
    r.n = *o.n;
  }
  try {
    r.decoding.validate();
  } catch (const Error& e) {
    throw ApiError(422, e.what(), "", "out_of_range");
  }
}

}  // namespace

DecodeOptions CaptionRequest::choice(int i) const {
  DecodeOptions d = decoding;
  if (d.strategy == "sample") d.seed += static_cast<uint64_t>(i);
  return d;
}

CaptionRequest parse_chat_request(const std::string& body, const DecodeOptions& defaults, const RequestLimits& limits) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) throw ApiError(400, "the body is not valid JSON", "", "bad_json");
  if (!j.is_object()) throw ApiError(400, "the body must be a JSON object", "", "bad_json");
  CaptionRequest r;
  if (!j.contains("model")) throw ApiError(400, "model is required", "model", "missing_field");
  r.model = field<std::string>(j, "model", "", "a string");
  if (!j.contains("messages")) throw ApiError(400, "messages is required", "messages", "missing_field");
  const json& messages = j["messages"];
  if (!messages.is_array() || messages.empty())
    throw ApiError(400, "messages must be a non-empty array", "messages", "wrong_type");
  for (size_t m = 0; m < messages.size(); ++m) {
    const std::string where = "messages[" + std::to_string(m) + "]";
    const json& msg = messages[m];
    if (!msg.is_object() || !msg.contains("role") || !msg["role"].is_string())
      throw ApiError(400, where + " must be an object with a string role", "messages", "wrong_type");
    if (msg["role"] != "user") continue;  // system / assistant turns say nothing to a captioner
    if (!msg.contains("content")) throw ApiError(400, where + ".content is required", "messages", "missing_field");
    const json& content = msg["content"];
    if (content.is_string()) {
      r.text += content.get<std::string>();
      continue;
    }
    if (!content.is_array()) throw ApiError(400, where + ".content must be a string or an array", "messages", "wrong_type");
    for (size_t p = 0; p < content.size(); ++p) {
      const std::string part_where = where + ".content[" + std::to_string(p) + "]";
      const json& part = content[p];
      if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
        throw ApiError(400, part_where + " must be an object with a string type", "messages", "wrong_type");
      const std::string type = part["type"];
      if (type == "text") {
        if (!part.contains("text") || !part["text"].is_string())
          throw ApiError(400, part_where + ".text must be a string", "messages", "wrong_type");
        r.text += part["text"].get<std::string>();
      } else if (type == "image_url") {
        const json& iu = part.value("image_url", json());
        const json url = iu.is_string() ? iu : iu.is_object() ? iu.value("url", json()) : json();
        if (!url.is_string())
          throw ApiError(400, part_where + ".image_url.url must be a string", "messages", "wrong_type");
        if (static_cast<int>(r.images.size()) >= limits.max_images)
          throw ApiError(413, "more than " + std::to_string(limits.max_images) + " images in one request", "messages",
                         "too_many_images");
        r.images.push_back(url_image(url.get<std::string>(), part_where + ".image_url", limits));
      } else {
        throw ApiError(400, part_where + ": content type '" + type + "' is not supported (image_url, text)", "messages",
                       "unsupported_content");
      }
    }
  }
  if (r.images.empty())
    throw ApiError(400, "no image in the user messages: a captioner needs an image_url part", "messages", "no_image");
  Options o;
  if (j.contains("max_tokens") && !j["max_tokens"].is_null()) o.max_tokens = field<int>(j, "max_tokens", "", "an integer");
  if (j.contains("max_completion_tokens") && !j["max_completion_tokens"].is_null())
    o.max_tokens = field<int>(j, "max_completion_tokens", "", "an integer");
  if (j.contains("n") && !j["n"].is_null()) o.n = field<int>(j, "n", "", "an integer");
  if (j.contains("temperature") && !j["temperature"].is_null())
    o.temperature = field<double>(j, "temperature", "", "a number");
  if (j.contains("top_p") && !j["top_p"].is_null()) o.top_p = field<double>(j, "top_p", "", "a number");
  if (j.contains("seed") && !j["seed"].is_null()) {
    if (!j["seed"].is_number_integer()) throw ApiError(400, "seed must be an integer", "seed", "wrong_type");
    o.seed = j["seed"].get<uint64_t>();
  }
  if (j.contains("stream") && !j["stream"].is_null()) r.stream = field<bool>(j, "stream", "", "a boolean");
  apply(o, defaults, limits, r);
  return r;
}

CaptionRequest parse_caption_request(const std::string& bytes, const std::map<std::string, std::string>& params,
                                     const DecodeOptions& defaults, const RequestLimits& limits) {
  CaptionRequest r;
  if (bytes.empty()) throw ApiError(400, "the body is empty: send the image bytes", "", "no_image");
  r.images.push_back(decode(std::vector<uint8_t>(bytes.begin(), bytes.end()), "the image", limits));
  Options o;
  auto number = [&](const char* key) -> std::optional<double> {
    auto it = params.find(key);
    if (it == params.end()) return std::nullopt;
    try {
      size_t used = 0;
      const double v = std::stod(it->second, &used);
      if (used != it->second.size()) throw std::invalid_argument("trailing");
      return v;
    } catch (const std::exception&) {
      throw ApiError(400, std::string(key) + "=" + it->second + " is not a number", key, "wrong_type");
    }
  };
  if (auto v = number("max_tokens")) o.max_tokens = static_cast<int>(*v);
  if (auto v = number("n")) o.n = static_cast<int>(*v);
  if (auto v = number("temperature")) o.temperature = *v;
  if (auto v = number("top_p")) o.top_p = *v;
  if (auto v = number("seed")) o.seed = static_cast<uint64_t>(*v);
  apply(o, defaults, limits, r);
  return r;
}

}  // namespace clipcap
