// Reranked decoding: of K candidate captions per image (model/decoding.h generate_candidates), keep
// the one a CLIP and the language model agree on best. A candidate's score is
//
//   (1 - W) * mean log p_LM(token)  +  W * log softmax_candidates(logit_scale * cos(image, text))
//
// both terms log-probabilities (per token, and of this candidate among the image's candidates as
// CLIP's contrastive head sees it), W = DecodeOptions::rerank_weight. W = 0 keeps the language
// model's best by mean log-probability; W = 1 CLIP's.
//
//   clipcap::ClipReranker r(std::make_unique<clipcap::ClipEmbedder>("models/emoji-clip", "--rerank-clip"));
//   auto candidates = captioner.candidates_for(embeds, opts, opts.rerank_candidates);
//   std::vector<clipcap::Caption> best = r.choose(r.clip().project_pooled(embeds), candidates, opts.rerank_weight);
//
// The texts go to CLIP as written (no prompt): a CLIP trained on plain captions, like the emoji
// default's, reads them best, and a shared prompt moves every candidate alike.
#pragma once

#include <torch/types.h>

#include <memory>
#include <vector>

#include "model/caption.h"
#include "model/clip_embedder.h"

namespace clipcap {

// The formula above for one image's candidates; returns one score per candidate.
std::vector<double> rerank_scores(const std::vector<double>& mean_logprobs, const std::vector<double>& cosines,
                                  double logit_scale, double weight);

class ClipReranker {
 public:
  explicit ClipReranker(std::unique_ptr<ClipEmbedder> clip);

  // image_features (N, P): unit image embeddings in the CLIP's space; candidates[i]: image i's
  // captions with their log-probabilities. All candidate texts go through the text tower in one
  // batch. Returns each image's best candidate (the first of equals) with its
  // RerankScores set.
  std::vector<Caption> choose(const torch::Tensor& image_features, const std::vector<std::vector<Caption>>& candidates,
                              double weight);

  ClipEmbedder& clip() { return *clip_; }

 private:
  std::unique_ptr<ClipEmbedder> clip_;
};

}  // namespace clipcap
