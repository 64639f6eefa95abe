// The local CLIP-prefix model as a caption backend: payloads are CLIP pixel values, then CLIP
// embeddings; a request's caption is the caption of its images' mean embedding.
//
//   clipcap::LocalBackend b(clipcap::Captioner::load("runs/small/best"), "runs/small/best");
//   auto captions = b.caption_images(images, b.captioner().config().decoding);
//
// With a reranker (set_reranker) it also decodes with DecodeOptions::rerank = "clip": candidates
// from the captioner, chosen by model/clip_reranker.h. The reranker's image embedding comes from the
// captioner's own CLIP embedding when both share the vision tower (same_vision_tower: then stored
// dataset embeddings still work), else from the images through the reranker's CLIP.
#pragma once

#include <memory>

#include "backend/caption_backend.h"
#include "model/captioner.h"
#include "model/clip_reranker.h"

namespace clipcap {

struct LocalBackendOptions {
  int image_batch = 16;    // --batch-size: images per CLIP forward
  int caption_batch = 64;  // --caption-batch: captions per generation batch; a step streams every
                           // GPT-2 weight once for the whole batch (bench/README.md, "Measurements
                           // behind code decisions")
  void validate() const;   // Error naming the flag
};

class LocalBackend : public CaptionBackend {
 public:
  // model_dir: where the captioner was loaded from (recorded by describe()).
  LocalBackend(Captioner captioner, std::string model_dir, LocalBackendOptions opts = {});

  nlohmann::json describe() const override;
  int image_batch() const override { return opts_.image_batch; }
  int caption_batch() const override { return opts_.caption_batch; }
  ImagePayload prepare(const Image& image) const override;
  std::vector<ImagePayload> encode(std::vector<ImagePayload> prepared) override;
  std::vector<Caption> caption(const std::vector<std::vector<const ImagePayload*>>& requests,
                               const DecodeOptions& opts, CaptionObserver* observer = nullptr,
                               const std::vector<uint64_t>& seeds = {}) override;
  std::optional<EmbeddingSpace> embedding_space() const override;

  Captioner& captioner() { return captioner_; }
  void set_batches(LocalBackendOptions opts) { opts_ = opts; }
  // shares_vision_tower: same_vision_tower(model dir, reranker's CLIP dir) (model/clip_embedder.h).
  void set_reranker(std::unique_ptr<ClipReranker> reranker, bool shares_vision_tower);

 private:
  torch::Tensor rerank_features(const std::vector<std::vector<const ImagePayload*>>& requests, const torch::Tensor& rows);

  Captioner captioner_;
  std::unique_ptr<ClipReranker> reranker_;
  bool reranker_shares_tower_ = false;
  std::string model_dir_;
  LocalBackendOptions opts_;
};

// upstream's size letter for a captioner: S for a GPT-2 of width <= 768 (gpt2), L above
// (gpt2-medium and up).
std::string model_size_label(const Captioner& model);

}  // namespace clipcap
