#include "eval/clip_score.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "common/error.h"
#include "model/clip.h"
#include "model/tokenizers/clip_tokenizer.h"
#include "model/image_processor.h"

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
  CLIPModel clip{nullptr};
  std::unique_ptr<ClipBpeTokenizer> tokenizer;
  std::unique_ptr<ImageProcessor> processor;
  ClipScoreOptions opts;
  torch::ScalarType dtype = torch::kFloat32;
};

ClipScorer::ClipScorer(const std::string& clip_dir, ClipScoreOptions opts, torch::ScalarType dtype)
    : impl_(std::make_unique<Impl>()) {
  namespace fs = std::filesystem;
  for (const char* f : {"config.json", "preprocessor_config.json", "vocab.json", "merges.txt"})
    if (!fs::exists(fs::path(clip_dir) / f))
      throw Error(clip_dir + ": no " + f + " (--clip needs an HF CLIP directory with its tokenizer)");
  impl_->opts = std::move(opts);
  impl_->dtype = dtype;
  CLIPLoadOptions load;
  load.dtype = dtype;
  load.with_text = true;
  impl_->clip = load_clip(clip_dir, load);
  if (!impl_->clip->text_model || !impl_->clip->visual_projection || !impl_->clip->text_projection)
    throw Error(clip_dir + ": CLIPScore needs both towers and both projections (a full CLIPModel)");
  impl_->clip->eval();
  impl_->tokenizer = ClipBpeTokenizer::from_dir(clip_dir);
  const CLIPTextConfig& text = impl_->clip->config.text;
  if (impl_->tokenizer->vocab_size() > text.vocab_size)
    throw Error(clip_dir + "/vocab.json: " + std::to_string(impl_->tokenizer->vocab_size()) +
                " tokens, but config.json's text_config.vocab_size is " + std::to_string(text.vocab_size));
  if (impl_->tokenizer->context_length() > text.max_position_embeddings)
    throw Error(clip_dir + ": tokenizer context length " + std::to_string(impl_->tokenizer->context_length()) +
                " exceeds text_config.max_position_embeddings " + std::to_string(text.max_position_embeddings));
  impl_->processor = std::make_unique<ImageProcessor>(ImageProcessor::from_dir(clip_dir));
}

ClipScorer::~ClipScorer() = default;
ClipScorer::ClipScorer(ClipScorer&&) noexcept = default;

torch::Tensor ClipScorer::embed_images(const std::vector<Image>& images) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  const auto bs = static_cast<size_t>(std::max<int64_t>(1, impl_->opts.batch_size));
  for (size_t start = 0; start < images.size(); start += bs) {
    const std::vector<Image> batch(images.begin() + static_cast<std::ptrdiff_t>(start),
                                   images.begin() + static_cast<std::ptrdiff_t>(std::min(images.size(), start + bs)));
    const torch::Tensor px = impl_->processor->preprocess_batch(batch);  // (B, 3, S, S)
    const torch::Tensor pooled = impl_->clip->vision_model->pooled(px);
    out.push_back(impl_->clip->image_embeds(pooled).to(torch::kFloat32));  // (B, P)
  }
  if (out.empty()) return torch::empty({0, impl_->clip->config.projection_dim});
  const torch::Tensor e = torch::cat(out);
  return e / e.norm(2, 1, true);
}

torch::Tensor ClipScorer::embed_texts(const std::vector<std::string>& captions) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  const auto bs = static_cast<size_t>(std::max<int64_t>(1, impl_->opts.batch_size));
  for (size_t start = 0; start < captions.size(); start += bs) {
    const size_t end = std::min(captions.size(), start + bs);
    std::vector<std::vector<int64_t>> ids;
    size_t longest = 0;
    for (size_t i = start; i < end; ++i) {
      ids.push_back(impl_->tokenizer->encode(impl_->opts.prompt + captions[i]));
      longest = std::max(longest, ids.back().size());
    }
    // Padding after the EOS cannot change the pooled EOS state (causal attention); the mask
    // keeps it out anyway. Pad id 0 stays below every EOS id, for argmax pooling.
    torch::Tensor input = torch::zeros({static_cast<int64_t>(ids.size()), static_cast<int64_t>(longest)}, torch::kInt64);
    torch::Tensor mask = torch::zeros_like(input);
    for (size_t b = 0; b < ids.size(); ++b)
      for (size_t t = 0; t < ids[b].size(); ++t) {
        input[static_cast<int64_t>(b)][static_cast<int64_t>(t)] = ids[b][t];
        mask[static_cast<int64_t>(b)][static_cast<int64_t>(t)] = 1;
      }
    const torch::Tensor pooled = impl_->clip->text_model->forward(input, mask).pooler_output;
    out.push_back(impl_->clip->text_embeds(pooled).to(torch::kFloat32));  // (B, P)
  }
  if (out.empty()) return torch::empty({0, impl_->clip->config.projection_dim});
  const torch::Tensor e = torch::cat(out);
  return e / e.norm(2, 1, true);
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
