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

void LocalBackend::set_reranker(std::unique_ptr<ClipReranker> reranker, bool shares_vision_tower) {
  reranker_ = std::move(reranker);
  reranker_shares_tower_ = shares_vision_tower;
}

namespace {
bool reads_own_pixels(const std::unique_ptr<ClipReranker>& r, bool shares) { return r && !shares; }
}  // namespace

ImagePayload LocalBackend::prepare(const Image& image) const {
  ImagePayload p{captioner_.processor().preprocess(image), {}, {}};
  if (reads_own_pixels(reranker_, reranker_shares_tower_)) p.rerank_tensor = reranker_->clip().processor().preprocess(image);
  return p;
}

std::vector<ImagePayload> LocalBackend::encode(std::vector<ImagePayload> prepared) {
  if (prepared.empty()) return {};
  std::vector<torch::Tensor> pixels;
  pixels.reserve(prepared.size());
  for (auto& p : prepared) pixels.push_back(std::move(p.tensor));
  const torch::Tensor emb = captioner_.embed_images(torch::stack(pixels));  // (n, Dc) float32
  std::vector<ImagePayload> out(prepared.size());
  // Each row its own storage: a video keeps some rows for a long time, the batch need not stay.
  for (size_t i = 0; i < out.size(); ++i) out[i].tensor = emb[static_cast<int64_t>(i)].clone();
  if (reads_own_pixels(reranker_, reranker_shares_tower_)) {
    std::vector<torch::Tensor> px;
    for (auto& p : prepared) px.push_back(std::move(p.rerank_tensor));
    const torch::Tensor features = reranker_->clip().embed_pixels(torch::stack(px));  // (n, P)
    for (size_t i = 0; i < out.size(); ++i) out[i].rerank_tensor = features[static_cast<int64_t>(i)].clone();
  }
  return out;
}

torch::Tensor LocalBackend::rerank_features(const std::vector<std::vector<const ImagePayload*>>& requests,
                                            const torch::Tensor& rows) {
  if (reranker_shares_tower_) {
    // rows are this CLIP's own pooler_output (or image_embeds): its image embedding follows.
    if (captioner_.config().prefix_input == "image_embeds") return rows / rows.norm(2, 1, true);
    return reranker_->clip().project_pooled(rows);
  }
  std::vector<torch::Tensor> features;
  for (const auto& r : requests) {
    std::vector<torch::Tensor> parts;
    for (const ImagePayload* p : r) {
      if (!p->rerank_tensor.defined())
        throw Error("--rerank-clip " + reranker_->clip().dir() +
                    ": its vision tower is not the captioner's, so it needs the images, not stored embeddings");
      parts.push_back(p->rerank_tensor);
    }
    const torch::Tensor mean = torch::stack(parts).mean(0);
    features.push_back(mean / mean.norm());
  }
  return torch::stack(features);
}

std::vector<Caption> LocalBackend::caption(const std::vector<std::vector<const ImagePayload*>>& requests,
                                           const DecodeOptions& opts, CaptionObserver* observer,
                                           const std::vector<uint64_t>& seeds) {
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
  const torch::Tensor embeds = torch::stack(rows);
  if (opts.rerank == "none") return captioner_.captions_for(embeds, opts, observer, seeds);
  if (!reranker_)
    throw Error("--rerank " + opts.rerank + " needs --rerank-clip DIR, a CLIP directory with its text tower");
  std::vector<Caption> out =
      reranker_->choose(rerank_features(requests, embeds), captioner_.candidates_for(embeds, opts, opts.rerank_candidates, seeds),
                        opts.rerank_weight);
  if (observer)
    for (size_t i = 0; i < out.size(); ++i) observer->finished(i, out[i]);
  return out;
}

std::optional<EmbeddingSpace> LocalBackend::embedding_space() const {
  if (reads_own_pixels(reranker_, reranker_shares_tower_)) return std::nullopt;  // its CLIP needs the images
  return EmbeddingSpace{captioner_.config().prefix_input, captioner_.config().prefix_input_size()};
}

}  // namespace clipcap
