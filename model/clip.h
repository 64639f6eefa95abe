// HF-compatible CLIP (CLIPModel: vision tower, text tower, projections, logit_scale) in libtorch.
//
//   auto clip = clipcap::load_clip("openai-clip-vit-base-patch32", {.dtype = torch::kFloat32});
//   torch::NoGradGuard no_grad;
//   auto v = clip->vision_model->forward(pixel_values);       // v.pooler_output: (B, Dv)
//   torch::Tensor pooled = clip->vision_model->pooled(pixel_values);  // the same, less work
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
  std::string source = "CLIP config";  // the config.json it came from, named in errors
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
  int64_t projection_dim = 0;  // 0: no projections (a CLIPVisionModel directory)
  bool vision_only = false;    // parsed from a clip_vision_model config: no text tower
  // Parses an HF CLIPConfig (model_type "clip") or a bare CLIPVisionConfig; where = file for errors.
  static CLIPConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;  // HF layout, readable by transformers
};

struct CLIPEncoderOutput {
  torch::Tensor last_hidden_state;           // (B, T, D) encoder output (vision: before post_layernorm)
  torch::Tensor pooler_output;               // (B, D)
  std::vector<torch::Tensor> hidden_states;  // when asked for: encoder input, then each layer's output
};

struct CLIPAttentionImpl : torch::nn::Module {
  explicit CLIPAttentionImpl(const CLIPEncoderConfig& cfg);
  // x (B, T, D); mask: additive (B or 1, 1, T, T) or undefined. queries > 0: only the first
  // `queries` positions attend (to all T) and are returned, (B, queries, D).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask = {}, int64_t queries = 0);
  int64_t num_heads, head_dim;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(CLIPAttention);

struct CLIPMLPImpl : torch::nn::Module {
  explicit CLIPMLPImpl(const CLIPEncoderConfig& cfg);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, D) -> (B, T, D)
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::Tensor (*act)(const torch::Tensor&) = nullptr;
};
TORCH_MODULE(CLIPMLP);

struct CLIPEncoderLayerImpl : torch::nn::Module {  // pre-LN: x + attn(ln1(x)), then x + mlp(ln2(x))
  explicit CLIPEncoderLayerImpl(const CLIPEncoderConfig& cfg);
  // queries > 0: the output of the first `queries` positions only (B, queries, D).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask = {}, int64_t queries = 0);
  CLIPAttention self_attn{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr};
  CLIPMLP mlp{nullptr};
  torch::nn::LayerNorm layer_norm2{nullptr};
};
TORCH_MODULE(CLIPEncoderLayer);

struct CLIPEncoderImpl : torch::nn::Module {
  explicit CLIPEncoderImpl(const CLIPEncoderConfig& cfg);
  // hidden_states (optional): gets the input, then each layer's output (HF's hidden_states tuple).
  // last_queries > 0: the last layer computes only the first `last_queries` positions.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask = {},
                        std::vector<torch::Tensor>* hidden_states = nullptr, int64_t last_queries = 0);
  torch::nn::ModuleList layers{nullptr};

 private:
  std::vector<CLIPEncoderLayer> layers_;  // the entries of layers, without a cast per call
};
TORCH_MODULE(CLIPEncoder);

struct CLIPVisionEmbeddingsImpl : torch::nn::Module {
  explicit CLIPVisionEmbeddingsImpl(const CLIPVisionConfig& cfg);
  // (B, C, S, S) -> (B, 1+N, Dv): [class_embedding, patches row-major] + position_embedding.
  torch::Tensor forward(const torch::Tensor& pixel_values);
  torch::Tensor class_embedding;  // (Dv)
  torch::nn::Conv2d patch_embedding{nullptr};
  torch::nn::Embedding position_embedding{nullptr};
};
TORCH_MODULE(CLIPVisionEmbeddings);

struct CLIPTextEmbeddingsImpl : torch::nn::Module {
  explicit CLIPTextEmbeddingsImpl(const CLIPTextConfig& cfg);
  torch::Tensor forward(const torch::Tensor& input_ids);  // (B, T) -> (B, T, Dt)
  torch::nn::Embedding token_embedding{nullptr}, position_embedding{nullptr};
};
TORCH_MODULE(CLIPTextEmbeddings);

// Outputs are in the weights' dtype (bf16 when loaded so); inputs are converted to it.
struct CLIPVisionTransformerImpl : torch::nn::Module {
  explicit CLIPVisionTransformerImpl(const CLIPVisionConfig& cfg);
  // pixel_values (B, num_channels, image_size, image_size): other sizes throw clipcap::Error.
  CLIPEncoderOutput forward(const torch::Tensor& pixel_values, bool want_hidden_states = false);
  // forward(pixel_values).pooler_output (B, Dv) with less work: the last layer computes the class
  // position only (its keys and values still come from every patch): ~7 % of ViT-B/32's arithmetic.
  torch::Tensor pooled(const torch::Tensor& pixel_values);
  CLIPVisionConfig config;
  CLIPVisionEmbeddings embeddings{nullptr};
  torch::nn::LayerNorm pre_layrnorm{nullptr};  // (sic: HF's name)
  CLIPEncoder encoder{nullptr};
  torch::nn::LayerNorm post_layernorm{nullptr};

 private:
  torch::Tensor encoder_input(const torch::Tensor& pixel_values);  // checked, embedded, pre-LN: (B, 1+N, Dv)
};
TORCH_MODULE(CLIPVisionTransformer);

struct CLIPTextTransformerImpl : torch::nn::Module {
  explicit CLIPTextTransformerImpl(const CLIPTextConfig& cfg);
  // input_ids (B, T) int64; attention_mask (B, T) 1 = token, 0 = padding (optional).
  CLIPEncoderOutput forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                            bool want_hidden_states = false);
  // (B) the position pooled per row: argmax(input_ids) if config.eos_token_id == 2 (old openai
  // configs), else the first position holding eos_token_id (transformers >= 4.31).
  torch::Tensor pooled_index(const torch::Tensor& input_ids) const;
  CLIPTextConfig config;
  CLIPTextEmbeddings embeddings{nullptr};
  CLIPEncoder encoder{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(CLIPTextTransformer);

class CLIPModelImpl : public torch::nn::Module {
 public:
  explicit CLIPModelImpl(const CLIPConfig& cfg, bool with_text = true);

  torch::Tensor image_embeds(const torch::Tensor& vision_pooled);  // visual_projection, (B, P)
  torch::Tensor text_embeds(const torch::Tensor& text_pooled);     // text_projection, (B, P)
  // exp(logit_scale) * normalised image_embeds (Bi, P) . normalised text_embeds (Bt, P): (Bi, Bt).
  torch::Tensor logits_per_image(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds);

  CLIPConfig config;
  CLIPVisionTransformer vision_model{nullptr};
  CLIPTextTransformer text_model{nullptr};  // null when loaded vision-only
  torch::nn::Linear visual_projection{nullptr};  // null for a CLIPVisionModel without projection
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
