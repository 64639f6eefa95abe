#include "backend/openai_backend.h"

#include <exception>
#include <thread>

namespace clipcap {

void OpenAIBackendOptions::validate() const {
  endpoint.validate("--endpoint");
  if (concurrency < 1 || concurrency > 256)
    throw Error("--concurrency must be between 1 and 256 (got " + std::to_string(concurrency) + ")");
  if (image_format != "jpeg" && image_format != "png")
    throw Error("--image-format must be jpeg or png (got '" + image_format + "')");
  if (jpeg_quality < 1 || jpeg_quality > 100)
    throw Error("--jpeg-quality must be between 1 and 100 (got " + std::to_string(jpeg_quality) + ")");
}

nlohmann::json RemoteUsage::to_json() const {
  return {{"requests", requests},
          {"failed", failed},
          {"retries", retries},
          {"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

ChatParams chat_params(const DecodeOptions& d, int max_tokens) {
  ChatParams p;
  if (d.strategy == "beam")
    throw Error("--strategy beam: a remote endpoint decodes on its side; give --strategy greedy or sample");
  if (d.rerank != "none")
    throw Error("--rerank " + d.rerank + ": reranking is for the local backend (a remote endpoint writes one caption per request)");
  if (d.strategy == "sample") {
    p.temperature = d.temperature;
    p.top_p = d.top_p;
    p.seed = static_cast<int64_t>(d.seed);
  }
  p.max_tokens = max_tokens;
  return p;
}

OpenAIBackend::OpenAIBackend(OpenAIBackendOptions opts)
    : opts_(std::move(opts)), mime_(opts_.image_format == "png" ? "image/png" : "image/jpeg") {
  opts_.validate();
  for (int i = 0; i < opts_.concurrency; ++i) clients_.emplace_back(opts_.endpoint);
}

nlohmann::json OpenAIBackend::describe() const {
  nlohmann::json d = {{"backend", "openai"},
                      {"endpoint", clients_.front().url()},
                      {"name", opts_.endpoint.model},
                      {"prompt", opts_.prompt},
                      {"image_format", opts_.image_format},
                      {"concurrency", opts_.concurrency},
                      {"timeout_s", opts_.endpoint.timeout_s},
                      {"retries", opts_.endpoint.retries}};
  if (opts_.image_format == "jpeg") d["jpeg_quality"] = opts_.jpeg_quality;
  if (opts_.max_tokens > 0) d["max_tokens"] = opts_.max_tokens;
  return d;
}

ImagePayload OpenAIBackend::prepare(const Image& image) const {
  ImagePayload p;
  p.bytes = opts_.image_format == "png" ? encode_png(image) : encode_jpeg(image, opts_.jpeg_quality);
  return p;
}

std::vector<Caption> OpenAIBackend::caption(const std::vector<std::vector<const ImagePayload*>>& requests,
                                            const DecodeOptions& opts, CaptionObserver* observer,
                                            const std::vector<uint64_t>& seeds) {
  return run(requests, std::vector<std::string>(requests.size(), opts_.prompt), opts, observer, seeds);
}

std::vector<Caption> OpenAIBackend::caption_with_prompts(const std::vector<std::vector<const ImagePayload*>>& requests,
                                                         const std::vector<std::string>& prompts,
                                                         const DecodeOptions& opts) {
  return run(requests, prompts, opts, nullptr, {});
}

std::vector<Caption> OpenAIBackend::run(const std::vector<std::vector<const ImagePayload*>>& requests,
                                        const std::vector<std::string>& prompts, const DecodeOptions& opts,
                                        CaptionObserver* observer, const std::vector<uint64_t>& seeds) {
  if (prompts.size() != requests.size())
    throw Error("openai backend: " + std::to_string(requests.size()) + " requests but " +
                std::to_string(prompts.size()) + " prompts");
  if (!seeds.empty() && seeds.size() != requests.size())
    throw Error("openai backend: " + std::to_string(requests.size()) + " requests but " +
                std::to_string(seeds.size()) + " seeds");
  const ChatParams params = chat_params(opts, opts_.max_tokens);
  std::vector<Caption> out(requests.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::exception_ptr fatal;
  std::mutex mutex;  // fatal, usage_, observer
  const auto work = [&](OpenAIChatClient& client) {
    for (size_t i; !stop && (i = next++) < requests.size();) {
      nlohmann::json content = nlohmann::json::array({text_part(prompts[i])});
      for (const ImagePayload* p : requests[i]) content.push_back(image_part(p->bytes, mime_));
      Caption c;
      int attempts = 1;
      try {
        ChatParams own = params;
        if (!seeds.empty() && opts.strategy == "sample") own.seed = static_cast<int64_t>(seeds[i]);
        ChatAnswer a = client.complete(content, own);
        c.text = std::move(a.text);
        c.tokens = a.completion_tokens;
        c.prompt_tokens = a.prompt_tokens;
        attempts = a.attempts;
      } catch (const BackendUnavailable&) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!fatal) fatal = std::current_exception();
        stop = true;
        return;
      } catch (const TransientEndpointError& e) {  // retried and given up: this item only
        c.error = e.what();
        attempts = 1 + opts_.endpoint.retries;
      } catch (const std::exception& e) {  // the endpoint refused this request
        c.error = e.what();
      }
      std::lock_guard<std::mutex> lock(mutex);
      {
        std::lock_guard<std::mutex> usage_lock(usage_mutex_);
        ++usage_.requests;
        usage_.retries += attempts - 1;
        if (!c.error.empty()) ++usage_.failed;
        usage_.prompt_tokens += c.prompt_tokens;
        usage_.completion_tokens += c.tokens;
      }
      if (observer && c.error.empty()) observer->finished(i, c);
      out[i] = std::move(c);
    }
  };
  const size_t workers = std::min(requests.size(), clients_.size());
  std::vector<std::thread> threads;
  for (size_t w = 1; w < workers; ++w) threads.emplace_back(work, std::ref(clients_[w]));
  if (workers > 0) work(clients_[0]);
  for (auto& t : threads) t.join();
  if (fatal) std::rethrow_exception(fatal);
  return out;
}

RemoteUsage OpenAIBackend::usage() const {
  std::lock_guard<std::mutex> lock(usage_mutex_);
  return usage_;
}

}  // namespace clipcap
