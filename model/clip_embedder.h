// A full HF CLIP (both towers, both projections, its tokenizer and image processor) as an
// embedder of images and texts into its joint space: what CLIPScore (eval/clip_score.h) and the
// CLIP reranker (model/clip_reranker.h) compare.
//
//   clipcap::ClipEmbedder clip("models/emoji-clip");             // Error naming what is missing
//   torch::Tensor img = clip.embed_images(images);                // (N, P) float32, unit rows
//   torch::Tensor txt = clip.embed_texts({"grinning face"});      // (M, P) float32, unit rows
//   torch::Tensor logits = clip.logit_scale() * img.matmul(txt.t());
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "image/image_io.h"

namespace clipcap {

class ImageProcessor;

class ClipEmbedder {
 public:
  // flag: the option that named clip_dir, for errors ("--clip", "--rerank-clip").
  ClipEmbedder(const std::string& clip_dir, const std::string& flag, torch::ScalarType dtype = torch::kFloat32);
  ~ClipEmbedder();
  ClipEmbedder(ClipEmbedder&&) noexcept;

  // batch: images or texts per forward pass.
  torch::Tensor embed_images(const std::vector<Image>& images, int64_t batch = 64);
  torch::Tensor embed_pixels(const torch::Tensor& pixel_values);  // (B, 3, H, W) from processor()
  // The vision tower's pooler_output (B, Dv) -> unit image embeddings (visual_projection).
  torch::Tensor project_pooled(const torch::Tensor& pooled);
  // Each text read as prompt + text, CLIP-tokenised and truncated to the context length.
  torch::Tensor embed_texts(const std::vector<std::string>& texts, const std::string& prompt = "", int64_t batch = 64);

  double logit_scale() const;  // exp of the stored log scale: CLIP's logit per unit of cosine
  int64_t projection_dim() const;
  const ImageProcessor& processor() const;
  const std::string& dir() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Whether the captioner in captioner_dir read its images with clip_dir's vision tower: every
// vision_model tensor (and, when with_projection, the visual projection) byte-identical in both
// model.safetensors files. Then the captioner's CLIP embeddings are this CLIP's, and the CLIP's
// image embedding follows from them without the pixels.
bool same_vision_tower(const std::string& captioner_dir, const std::string& clip_dir, bool with_projection);

}  // namespace clipcap
