#include "backend/caption_backend.h"

#include <algorithm>
#include <cmath>

namespace clipcap {

std::vector<Caption> CaptionBackend::caption_images(const std::vector<Image>& images, const DecodeOptions& opts) {
  std::vector<ImagePayload> encoded;
  encoded.reserve(images.size());
  const size_t batch = static_cast<size_t>(std::max(1, image_batch()));
  for (size_t b = 0; b < images.size(); b += batch) {
    std::vector<ImagePayload> prepared;
    for (size_t i = b; i < std::min(images.size(), b + batch); ++i) prepared.push_back(prepare(images[i]));
    for (auto& p : encode(std::move(prepared))) encoded.push_back(std::move(p));
  }
  std::vector<Caption> out;
  out.reserve(images.size());
  const size_t per_call = static_cast<size_t>(std::max(1, caption_batch()));
  for (size_t b = 0; b < encoded.size(); b += per_call) {
    std::vector<std::vector<const ImagePayload*>> requests;
    for (size_t i = b; i < std::min(encoded.size(), b + per_call); ++i) requests.push_back({&encoded[i]});
    for (auto& c : caption(requests, opts)) out.push_back(std::move(c));
  }
  return out;
}

nlohmann::json rerank_json(const RerankScores& r) {
  if (r.candidates == 0) return nullptr;
  return {{"clip_similarity", r.clip_similarity},
          {"rerank_score", r.rerank_score},
          {"candidates", r.candidates},
          {"mean_logprob", std::isnan(r.mean_logprob) ? nlohmann::json(nullptr) : nlohmann::json(r.mean_logprob)}};
}

}  // namespace clipcap
