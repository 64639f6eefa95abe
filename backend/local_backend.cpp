#include "backend/local_backend.h"

#include <torch/torch.h>

#include "common/error.h"
#include "common/paths.h"

namespace clipcap {

void LocalBackendOptions::validate() const {
  if (image_batch < 1) throw Error("--batch-size must be >= 1, got " + std::to_string(image_batch));
  if (caption_batch < 1) throw Error("--caption-batch must be >= 1, got " + std::to_string(caption_batch));
}

std::string model_size_label(const Captioner& model) { return model.config().gpt2.n_embd <= 768 ? "S" : "L"; }

LocalBackend::LocalBackend(Captioner captioner, std::string model_dir, LocalBackendOptions opts)
    : captioner_(std::move(captioner)), model_dir_(std::move(model_dir)), opts_(opts) {}

nlohmann::json LocalBackend::describe() const {
  const CaptionerConfig& cfg = captioner_.config();
  return {{"backend", "local"},
          {"dir", model_dir_},
          {"name", base_name(model_dir_)},
          {"size", model_size_label(captioner_)},
          {"prefix_input", cfg.prefix_input},
          {"legacy", cfg.legacy},
          {"tokenizer", cfg.tokenizer},
          {"clip_hidden_size", cfg.clip.vision.hidden_size},
          {"gpt2_n_layer", cfg.gpt2.n_layer},
          {"gpt2_n_embd", cfg.gpt2.n_embd},
          {"prefix_tokens", cfg.mapping.ep_len}};
}

ImagePayload LocalBackend::prepare(const Image& image) const { return {captioner_.processor().preprocess(image), {}}; }

std::vector<ImagePayload> LocalBackend::encode(std::vector<ImagePayload> prepared) {
  if (prepared.empty()) return {};
  std::vector<torch::Tensor> pixels;
  pixels.reserve(prepared.size());
  for (auto& p : prepared) pixels.push_back(std::move(p.tensor));
  const torch::Tensor emb = captioner_.embed_images(torch::stack(pixels));  // (n, Dc) float32
  std::vector<ImagePayload> out(prepared.size());
  // Each row its own storage: a video keeps some rows for a long time, the batch need not stay.
  for (size_t i = 0; i < out.size(); ++i) out[i].tensor = emb[static_cast<int64_t>(i)].clone();
  return out;
}

std::vector<Caption> LocalBackend::caption(const std::vector<std::vector<const ImagePayload*>>& requests,
                                           const DecodeOptions& opts, CaptionObserver* observer) {
  if (requests.empty()) return {};
  std::vector<torch::Tensor> rows;
  rows.reserve(requests.size());
  for (const auto& r : requests) {
    if (r.empty()) throw Error("caption backend: a request without images");
    if (r.size() == 1) {
      rows.push_back(r[0]->tensor);  // (Dc)
      continue;
    }
    std::vector<torch::Tensor> embs;
    for (const ImagePayload* p : r) embs.push_back(p->tensor);
    rows.push_back(torch::stack(embs).mean(0));  // (Dc)
  }
  return captioner_.captions_for(torch::stack(rows), opts, observer);
}

std::optional<EmbeddingSpace> LocalBackend::embedding_space() const {
  return EmbeddingSpace{captioner_.config().prefix_input, captioner_.config().prefix_input_size()};
}

}  // namespace clipcap
