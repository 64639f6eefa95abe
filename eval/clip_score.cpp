#include "eval/clip_score.h"

#include <torch/torch.h>

#include <algorithm>

#include "model/clip_embedder.h"

namespace clipcap {

ClipScoreResult clip_scores(const torch::Tensor& image, const torch::Tensor& candidate, const torch::Tensor& refs,
                            const std::vector<int64_t>& ref_owner, double w) {
  const int64_t n = image.size(0);
  const torch::Tensor img = image.to(torch::kFloat64), cand = candidate.to(torch::kFloat64);
  const torch::Tensor cos = (img * cand).sum(1);  // (N)
  ClipScoreResult r;
  for (int64_t i = 0; i < n; ++i) r.per_image_clip_score.push_back(w * std::max(cos[i].item<double>(), 0.0));
  if (refs.defined() && refs.numel() > 0) {
    const torch::Tensor sims = torch::matmul(cand, refs.to(torch::kFloat64).t());  // (N, M)
    std::vector<double> best(static_cast<size_t>(n), -2.0);
    const auto acc = sims.accessor<double, 2>();
    for (size_t j = 0; j < ref_owner.size(); ++j) {
      const int64_t i = ref_owner[j];
      best[static_cast<size_t>(i)] = std::max(best[static_cast<size_t>(i)], acc[i][static_cast<int64_t>(j)]);
    }
    for (int64_t i = 0; i < n; ++i) {
      const double a = r.per_image_clip_score[static_cast<size_t>(i)];
      const double b = std::max(best[static_cast<size_t>(i)], 0.0);  // an image without references: 0
      r.per_image_ref_clip_score.push_back(a + b > 0 ? 2 * a * b / (a + b) : 0.0);
    }
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
  };
  r.clip_score = mean(r.per_image_clip_score);
  r.ref_clip_score = mean(r.per_image_ref_clip_score);
  return r;
}

struct ClipScorer::Impl {
  Impl(const std::string& dir, ClipScoreOptions o, torch::ScalarType dtype) : clip(dir, "--clip", dtype), opts(std::move(o)) {}
  ClipEmbedder clip;
  ClipScoreOptions opts;
};

ClipScorer::ClipScorer(const std::string& clip_dir, ClipScoreOptions opts, torch::ScalarType dtype)
    : impl_(std::make_unique<Impl>(clip_dir, std::move(opts), dtype)) {}

ClipScorer::~ClipScorer() = default;
ClipScorer::ClipScorer(ClipScorer&&) noexcept = default;

torch::Tensor ClipScorer::embed_images(const std::vector<Image>& images) {
  return impl_->clip.embed_images(images, impl_->opts.batch_size);
}

torch::Tensor ClipScorer::embed_texts(const std::vector<std::string>& captions) {
  return impl_->clip.embed_texts(captions, impl_->opts.prompt, impl_->opts.batch_size);
}

ClipScoreResult ClipScorer::score(const torch::Tensor& image_embeds, const std::vector<std::string>& candidates,
                                  const std::vector<std::vector<std::string>>& references) {
  const torch::Tensor cand = embed_texts(candidates);
  std::vector<std::string> flat;
  std::vector<int64_t> owner;
  for (size_t i = 0; i < references.size(); ++i)
    for (const std::string& r : references[i]) {
      flat.push_back(r);
      owner.push_back(static_cast<int64_t>(i));
    }
  const torch::Tensor refs = flat.empty() ? torch::Tensor() : embed_texts(flat);
  return clip_scores(image_embeds, cand, refs, owner, impl_->opts.w);
}

}  // namespace clipcap
