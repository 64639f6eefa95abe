// The local CLIP-prefix model as a caption backend: payloads are CLIP pixel values, then CLIP
// embeddings; a request's caption is the caption of its images' mean embedding.
//
//   clipcap::LocalBackend b(clipcap::Captioner::load("runs/small/best"), "runs/small/best");
//   auto captions = b.caption_images(images, b.captioner().config().decoding);
#pragma once

#include "backend/caption_backend.h"
#include "model/captioner.h"

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
                               const DecodeOptions& opts, CaptionObserver* observer = nullptr) override;
  std::optional<EmbeddingSpace> embedding_space() const override;

  Captioner& captioner() { return captioner_; }
  void set_batches(LocalBackendOptions opts) { opts_ = opts; }

 private:
  Captioner captioner_;
  std::string model_dir_;
  LocalBackendOptions opts_;
};

// upstream's size letter for a captioner: S for a GPT-2 of width <= 768 (gpt2), L above
// (gpt2-medium and up).
std::string model_size_label(const Captioner& model);

}  // namespace clipcap
