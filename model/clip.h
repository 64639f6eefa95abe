// HF-compatible CLIP (CLIPModel: vision tower, text tower, projections, logit_scale) in libtorch.
//
//   auto clip = clipcap::load_clip("openai-clip-vit-base-patch32", {.dtype = torch::kFloat32});
//   torch::NoGradGuard no_grad;
//   auto v = clip->vision->forward(pixel_values);       // v.pooler_output: (B, Dv)
//   torch::Tensor img = clip->image_embeds(v.pooler_output);   // (B, P), not normalised
//
// Module and parameter names follow the HF weight names (vision_model.embeddings.patch_embedding,
// encoder.layers.N.self_attn.q_proj, ...), so loading is a checked loop over named_parameters().
// Sizes come from config.json only. Shapes: B batch, T tokens, Dv/Dt widths, P projection_dim.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace clipcap {

struct CLIPEncoderConfig {  // shared by both towers
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_attention_heads = 0;
  int64_t num_hidden_layers = 0;
  std::string hidden_act = "quick_gelu";  // quick_gelu | gelu | gelu_new
  double layer_norm_eps = 1e-5;
};

struct CLIPVisionConfig : CLIPEncoderConfig {
  int64_t image_size = 0;
  int64_t patch_size = 0;
  int64_t num_channels = 3;
};

struct CLIPTextConfig : CLIPEncoderConfig {
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  int64_t bos_token_id = 49406;
  int64_t eos_token_id = 49407;
  int64_t pad_token_id = 1;
};

struct CLIPConfig {
  CLIPVisionConfig vision;
  CLIPTextConfig text;
  int64_t projection_dim = 0;
  // Parses an HF CLIPConfig (model_type "clip") or a bare CLIPVisionConfig; where = file for errors.
  static CLIPConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;  // HF layout, readable by transformers
};

struct CLIPEncoderOutput {
  torch::Tensor last_hidden_state;           // (B, T, D) encoder output (vision: before post_layernorm)
  torch::Tensor pooler_output;               // (B, D)
  std::vector<torch::Tensor> hidden_states;  // per-layer outputs when asked for
};

// TODO(clip helper): declare CLIPAttention, CLIPMLP, CLIPEncoderLayer, CLIPEncoder,
// CLIPVisionEmbeddings, CLIPTextEmbeddings, CLIPVisionTransformer (forward(pixel_values, bool
// want_hidden_states=false) -> CLIPEncoderOutput) and CLIPTextTransformer (forward(input_ids,
// attention_mask = {}) -> CLIPEncoderOutput) here, HF-named, smallest parts first.

class CLIPModelImpl : public torch::nn::Module {
 public:
  explicit CLIPModelImpl(const CLIPConfig& cfg, bool with_text = true);

  torch::Tensor image_embeds(const torch::Tensor& vision_pooled);  // visual_projection, (B, P)
  torch::Tensor text_embeds(const torch::Tensor& text_pooled);     // text_projection, (B, P)

  CLIPConfig config;
  CLIPVisionTransformer vision_model{nullptr};
  CLIPTextTransformer text_model{nullptr};  // null when loaded vision-only
  torch::nn::Linear visual_projection{nullptr};
  torch::nn::Linear text_projection{nullptr};
  torch::Tensor logit_scale;  // stored log scale (not exponentiated)
};
TORCH_MODULE(CLIPModel);

struct CLIPLoadOptions {
  torch::ScalarType dtype = torch::kFloat32;
  bool with_text = true;  // false: vision tower + visual_projection only (datasets, inference)
};

// dir: an HF CLIP directory (config.json + model.safetensors or pytorch_model.bin).
CLIPModel load_clip(const std::string& dir, const CLIPLoadOptions& opts = {});

}  // namespace clipcap
