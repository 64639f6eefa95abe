// A vision-language model served behind an OpenAI-compatible endpoint (vLLM, sglang, lmdeploy,
// clipcap-serve) as a caption backend: each request is one chat completion whose user message holds
// the prompt and the request's images as data: URLs.
//
//   clipcap::OpenAIBackendOptions o;
//   o.endpoint.url = "http://gpu-box:8000/v1";  o.endpoint.model = "llava-hf/llava-v1.6-mistral-7b-hf";
//   clipcap::OpenAIBackend b(o);
//   auto captions = b.caption_images(images, decoding);   // `concurrency` requests in flight
//
// prepare() encodes the image (JPEG, or PNG: lossless, so a clipcap-serve on the other end
// captions exactly the pixels the local model would); encode() passes the bytes through. A
// request the endpoint gives up on (after the client's retries, backend/openai_chat_client.h)
// comes back as a Caption with `error` set; an endpoint that can serve nothing throws
// BackendUnavailable. Decoding: greedy -> temperature 0, sample -> its temperature, top_p and
// seed; max_tokens only when set (the server's default otherwise); beam search is refused (the
// server decodes).
#pragma once

#include <atomic>
#include <mutex>

#include "backend/caption_backend.h"
#include "backend/openai_chat_client.h"

namespace clipcap {

struct OpenAIBackendOptions {
  EndpointOptions endpoint;
  std::string prompt = "Describe this image in one sentence.";  // requests without a prompt of their own
  int concurrency = 4;          // --concurrency: requests in flight
  std::string image_format = "jpeg";  // --image-format: jpeg | png
  int jpeg_quality = 90;        // --jpeg-quality
  int max_tokens = 0;           // "max_tokens" of each request (0: not sent)

  void validate() const;  // Error naming the flag
};

// Token usage and request counts, totalled over a backend's life.
struct RemoteUsage {
  int64_t requests = 0, failed = 0, retries = 0;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  nlohmann::json to_json() const;
};

class OpenAIBackend : public CaptionBackend {
 public:
  explicit OpenAIBackend(OpenAIBackendOptions opts);

  nlohmann::json describe() const override;
  int image_batch() const override { return 64; }  // encode() is free: any size will do
  int caption_batch() const override { return 4 * opts_.concurrency; }  // workers keep `concurrency` busy
  ImagePayload prepare(const Image& image) const override;
  std::vector<ImagePayload> encode(std::vector<ImagePayload> prepared) override { return prepared; }
  std::vector<Caption> caption(const std::vector<std::vector<const ImagePayload*>>& requests,
                               const DecodeOptions& opts, CaptionObserver* observer = nullptr,
                               const std::vector<uint64_t>& seeds = {}) override;
  bool reads_prompts() const override { return true; }
  std::vector<Caption> caption_with_prompts(const std::vector<std::vector<const ImagePayload*>>& requests,
                                            const std::vector<std::string>& prompts, const DecodeOptions& opts) override;

  RemoteUsage usage() const;
  const OpenAIBackendOptions& options() const { return opts_; }

 private:
  std::vector<Caption> run(const std::vector<std::vector<const ImagePayload*>>& requests,
                           const std::vector<std::string>& prompts, const DecodeOptions& opts, CaptionObserver* observer,
                           const std::vector<uint64_t>& seeds);

  OpenAIBackendOptions opts_;
  std::string mime_;
  std::vector<OpenAIChatClient> clients_;  // one per worker: each keeps its connection alive
  mutable std::mutex usage_mutex_;
  RemoteUsage usage_;
};

// The sampling fields a request carries for these decoding options (beam search: Error).
ChatParams chat_params(const DecodeOptions& d, int max_tokens);

}  // namespace clipcap
