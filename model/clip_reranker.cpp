#include "model/clip_reranker.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "common/error.h"

namespace clipcap {

std::vector<double> rerank_scores(const std::vector<double>& mean_logprobs, const std::vector<double>& cosines,
                                  double logit_scale, double weight) {
  if (mean_logprobs.size() != cosines.size())
    throw Error("rerank: " + std::to_string(mean_logprobs.size()) + " language-model scores for " +
                std::to_string(cosines.size()) + " CLIP similarities");
  // log softmax over the candidates of logit_scale * cos, computed stably.
  double top = -std::numeric_limits<double>::infinity();
  for (double c : cosines) top = std::max(top, logit_scale * c);
  double sum = 0;
  for (double c : cosines) sum += std::exp(logit_scale * c - top);
  const double log_norm = top + std::log(sum);
  std::vector<double> scores;
  for (size_t i = 0; i < cosines.size(); ++i) {
    // A caption without a known log-probability (NaN) is judged by CLIP alone.
    const double lm = std::isnan(mean_logprobs[i]) ? 0.0 : mean_logprobs[i];
    scores.push_back((1 - weight) * lm + weight * (logit_scale * cosines[i] - log_norm));
  }
  return scores;
}

ClipReranker::ClipReranker(std::unique_ptr<ClipEmbedder> clip) : clip_(std::move(clip)) {}

std::vector<Caption> ClipReranker::choose(const torch::Tensor& image_features,
                                          const std::vector<std::vector<Caption>>& candidates, double weight) {
  const auto n = static_cast<int64_t>(candidates.size());
  if (image_features.dim() != 2 || image_features.size(0) != n || image_features.size(1) != clip_->projection_dim())
    throw Error("rerank: image features must be (" + std::to_string(n) + ", " + std::to_string(clip_->projection_dim()) +
                "), got " + shape_string(image_features.sizes().vec()));
  std::vector<std::string> texts;
  for (const auto& list : candidates) {
    if (list.empty()) throw Error("rerank: an image without candidates");
    for (const Caption& c : list) texts.push_back(c.text);
  }
  const torch::Tensor text = clip_->embed_texts(texts, "", std::max<int64_t>(1, static_cast<int64_t>(texts.size())));
  const torch::Tensor image = image_features.to(torch::kFloat32);
  const double scale = clip_->logit_scale();

  std::vector<Caption> out;
  int64_t row = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto& list = candidates[static_cast<size_t>(i)];
    const auto k = static_cast<int64_t>(list.size());
    const torch::Tensor cos = text.slice(0, row, row + k).matmul(image[i]).to(torch::kFloat64).contiguous();  // (k)
    row += k;
    const std::vector<double> cosines(cos.data_ptr<double>(), cos.data_ptr<double>() + k);
    std::vector<double> lm;
    for (const Caption& c : list) lm.push_back(c.mean_logprob());
    const std::vector<double> scores = rerank_scores(lm, cosines, scale, weight);
    const auto best = static_cast<size_t>(std::max_element(scores.begin(), scores.end()) - scores.begin());
    Caption c = list[best];
    c.rerank = {cosines[best], scores[best], k, c.mean_logprob()};
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace clipcap
