// CLIPScore and RefCLIPScore (Hessel et al., EMNLP 2021), as their reference code computes them.
//
//   clipcap::ClipScorer scorer("clip-vit-base-patch32");        // HF CLIP dir with text tower + tokenizer
//   torch::Tensor img = scorer.embed_images(images);             // (N, P), L2-normalised
//   clipcap::ClipScoreResult r = scorer.score(img, predictions, references);
//   // r.clip_score, r.ref_clip_score: means over images; r.per_image_*: one value per image
//
// Each caption is read as "A photo depicts <caption>" (the paper's prompt), CLIP-tokenised and
// truncated to the context length. With unit vectors (image_embeds / text_embeds normalised):
//   CLIPScore(c, v)       = w * max(cos(c, v), 0),  w = 2.5
//   RefCLIPScore(c, R, v) = harmonic mean of CLIPScore(c, v) and max(max_{r in R} cos(c, r), 0)
//                           (0 when both are 0)
// The text-text term is not multiplied by w, as in the paper and its code. Corpus values are the
// means over images. The paper used ViT-B/32; any HF CLIP with projections works, but only
// scores from the same CLIP are comparable.
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "image/image_io.h"

namespace clipcap {

struct ClipScoreOptions {
  double w = 2.5;                           // the paper's rescaling of the image-text cosine
  std::string prompt = "A photo depicts ";  // prepended to every caption (candidates and references)
  int64_t batch_size = 64;                  // images or texts per forward pass
};

struct ClipScoreResult {
  double clip_score = 0;      // mean over images
  double ref_clip_score = 0;  // mean over images (0 when no references were given)
  std::vector<double> per_image_clip_score;
  std::vector<double> per_image_ref_clip_score;  // empty when no references were given
};

// The formulas on normalised embeddings: image (N, P), candidate (N, P), refs (M, P) where row j
// belongs to image ref_owner[j]; refs may be undefined (CLIPScore only).
ClipScoreResult clip_scores(const torch::Tensor& image, const torch::Tensor& candidate, const torch::Tensor& refs,
                            const std::vector<int64_t>& ref_owner, double w = 2.5);

class ClipScorer {
 public:
  // Loads config, weights (both towers and projections), preprocessor_config.json and the CLIP
  // tokenizer (vocab.json + merges.txt); Error naming what is missing.
  explicit ClipScorer(const std::string& clip_dir, ClipScoreOptions opts = {}, torch::ScalarType dtype = torch::kFloat32);
  ~ClipScorer();
  ClipScorer(ClipScorer&&) noexcept;

  torch::Tensor embed_images(const std::vector<Image>& images);       // (N, P) float32, unit rows
  torch::Tensor embed_texts(const std::vector<std::string>& captions);  // (N, P) float32, unit rows, prompt added
  // references[i]: image i's references (may be empty for every image: CLIPScore only).
  ClipScoreResult score(const torch::Tensor& image_embeds, const std::vector<std::string>& candidates,
                        const std::vector<std::vector<std::string>>& references);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clipcap
