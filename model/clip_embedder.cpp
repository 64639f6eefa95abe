#include "model/clip_embedder.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "common/error.h"
#include "model/clip.h"
#include "model/image_processor.h"
#include "model/kernels/inference_matmul.h"
#include "model/tokenizers/clip_tokenizer.h"
#include "model/weights/weight_source.h"

namespace clipcap {

struct ClipEmbedder::Impl {
  std::string dir;
  CLIPModel clip{nullptr};
  std::unique_ptr<ClipBpeTokenizer> tokenizer;
  std::unique_ptr<ImageProcessor> processor;
};

ClipEmbedder::ClipEmbedder(const std::string& clip_dir, const std::string& flag, torch::ScalarType dtype)
    : impl_(std::make_unique<Impl>()) {
  namespace fs = std::filesystem;
  for (const char* f : {"config.json", "preprocessor_config.json", "vocab.json", "merges.txt"})
    if (!fs::exists(fs::path(clip_dir) / f))
      throw Error(clip_dir + ": no " + f + " (" + flag + " needs an HF CLIP directory with its tokenizer)");
  impl_->dir = clip_dir;
  CLIPLoadOptions load;
  load.dtype = dtype;
  load.with_text = true;
  impl_->clip = load_clip(clip_dir, load);
  if (!impl_->clip->text_model || !impl_->clip->visual_projection || !impl_->clip->text_projection)
    throw Error(clip_dir + ": " + flag + " needs both towers and both projections (a full CLIPModel)");
  impl_->clip->eval();
  freeze_weights_for_inference(*impl_->clip);  // scoring and reranking only
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

ClipEmbedder::~ClipEmbedder() = default;
ClipEmbedder::ClipEmbedder(ClipEmbedder&&) noexcept = default;

namespace {
torch::Tensor unit_rows(const torch::Tensor& e) { return e / e.norm(2, 1, true); }
}  // namespace

torch::Tensor ClipEmbedder::project_pooled(const torch::Tensor& pooled) {
  torch::NoGradGuard no_grad;
  const torch::Tensor w = impl_->clip->visual_projection->weight;
  return unit_rows(impl_->clip->image_embeds(pooled.to(w.device(), w.scalar_type())).to(torch::kFloat32));
}

torch::Tensor ClipEmbedder::embed_pixels(const torch::Tensor& pixel_values) {
  torch::NoGradGuard no_grad;
  const torch::Tensor w = impl_->clip->visual_projection->weight;
  return project_pooled(impl_->clip->vision_model->pooled(pixel_values.to(w.device(), w.scalar_type())));
}

torch::Tensor ClipEmbedder::embed_images(const std::vector<Image>& images, int64_t batch) {
  std::vector<torch::Tensor> out;
  const auto bs = static_cast<size_t>(std::max<int64_t>(1, batch));
  for (size_t start = 0; start < images.size(); start += bs) {
    const std::vector<Image> part(images.begin() + static_cast<std::ptrdiff_t>(start),
                                  images.begin() + static_cast<std::ptrdiff_t>(std::min(images.size(), start + bs)));
    out.push_back(embed_pixels(impl_->processor->preprocess_batch(part)));  // (B, P)
  }
  if (out.empty()) return torch::empty({0, projection_dim()});
  return torch::cat(out);
}

torch::Tensor ClipEmbedder::embed_texts(const std::vector<std::string>& texts, const std::string& prompt, int64_t batch) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  const auto bs = static_cast<size_t>(std::max<int64_t>(1, batch));
  const torch::Device device = impl_->clip->text_projection->weight.device();
  for (size_t start = 0; start < texts.size(); start += bs) {
    const size_t end = std::min(texts.size(), start + bs);
    std::vector<std::vector<int64_t>> ids;
    size_t longest = 0;
    for (size_t i = start; i < end; ++i) {
      ids.push_back(impl_->tokenizer->encode(prompt + texts[i]));
      longest = std::max(longest, ids.back().size());
    }
    // Padding after the EOS cannot change the pooled EOS state (causal attention); the mask
    // keeps it out anyway. Pad id 0 stays below every EOS id, for argmax pooling.
    torch::Tensor input = torch::zeros({static_cast<int64_t>(ids.size()), static_cast<int64_t>(longest)}, torch::kInt64);
    torch::Tensor mask = torch::zeros_like(input);
    auto in = input.accessor<int64_t, 2>();
    auto m = mask.accessor<int64_t, 2>();
    for (size_t b = 0; b < ids.size(); ++b)
      for (size_t t = 0; t < ids[b].size(); ++t) {
        in[static_cast<int64_t>(b)][static_cast<int64_t>(t)] = ids[b][t];
        m[static_cast<int64_t>(b)][static_cast<int64_t>(t)] = 1;
      }
    const torch::Tensor pooled = impl_->clip->text_model->forward(input.to(device), mask.to(device)).pooler_output;
    out.push_back(unit_rows(impl_->clip->text_embeds(pooled).to(torch::kFloat32)));  // (B, P)
  }
  if (out.empty()) return torch::empty({0, projection_dim()});
  return torch::cat(out);
}

double ClipEmbedder::logit_scale() const { return impl_->clip->logit_scale.exp().item<double>(); }
int64_t ClipEmbedder::projection_dim() const { return impl_->clip->config.projection_dim; }
const ImageProcessor& ClipEmbedder::processor() const { return *impl_->processor; }
const std::string& ClipEmbedder::dir() const { return impl_->dir; }

bool same_vision_tower(const std::string& captioner_dir, const std::string& clip_dir, bool with_projection) {
  const auto captioner = open_weights(find_weights_file(captioner_dir));
  const auto clip = open_weights(find_weights_file(clip_dir));
  bool any = false;
  for (const std::string& name : clip->names()) {
    const bool vision = name.rfind("vision_model.", 0) == 0 && name.find("position_ids") == std::string::npos;
    if (!vision && !(with_projection && name == "visual_projection.weight")) continue;
    const std::string mine = "clip." + name;
    if (!captioner->contains(mine) || captioner->shape(mine) != clip->shape(name)) return false;
    if (!torch::equal(captioner->load(mine, torch::kFloat32), clip->load(name, torch::kFloat32))) return false;
    any = true;
  }
  return any;
}

}  // namespace clipcap
