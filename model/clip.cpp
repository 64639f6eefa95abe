#include "model/clip.h"

#include <torch/torch.h>

#include <cmath>

#include "common/json_util.h"
#include "model/kernels/activations.h"
#include "model/kernels/attention_masks.h"
#include "model/kernels/inference_matmul.h"
#include "model/kernels/inference_norm.h"
#include "model/weights/load_weights.h"

namespace clipcap {

// ---- config ----------------------------------------------------------------------------------

namespace {

void check_positive(int64_t value, const char* name, const std::string& where) {
  if (value <= 0) throw Error(where + ": field '" + name + "' must be positive (got " + std::to_string(value) + ")");
}

void parse_encoder(const nlohmann::json& j, const std::string& where, CLIPEncoderConfig& c) {
  if (!j.is_object()) throw Error(where + ": not a JSON object");
  c.hidden_size = json_require<int64_t>(j, "hidden_size", where);
  c.intermediate_size = json_require<int64_t>(j, "intermediate_size", where);
  c.num_attention_heads = json_require<int64_t>(j, "num_attention_heads", where);
  c.num_hidden_layers = json_require<int64_t>(j, "num_hidden_layers", where);
  c.hidden_act = json_value<std::string>(j, "hidden_act", "quick_gelu", where);
  c.layer_norm_eps = json_value<double>(j, "layer_norm_eps", 1e-5, where);
  check_positive(c.hidden_size, "hidden_size", where);
  check_positive(c.intermediate_size, "intermediate_size", where);
  check_positive(c.num_attention_heads, "num_attention_heads", where);
  check_positive(c.num_hidden_layers, "num_hidden_layers", where);
  if (c.hidden_size % c.num_attention_heads != 0)
    throw Error(where + ": field 'hidden_size' (" + std::to_string(c.hidden_size) +
                ") is not divisible by num_attention_heads (" + std::to_string(c.num_attention_heads) + ")");
  activation_by_name(c.hidden_act, where + ": hidden_act");
}

CLIPVisionConfig parse_vision(const nlohmann::json& j, const std::string& where, const std::string& source) {
  CLIPVisionConfig c;
  parse_encoder(j, where, c);
  c.image_size = json_require<int64_t>(j, "image_size", where);
  c.patch_size = json_require<int64_t>(j, "patch_size", where);
  c.num_channels = json_value<int64_t>(j, "num_channels", 3, where);
  check_positive(c.image_size, "image_size", where);
  check_positive(c.patch_size, "patch_size", where);
  check_positive(c.num_channels, "num_channels", where);
  if (c.patch_size > c.image_size)
    throw Error(where + ": field 'patch_size' (" + std::to_string(c.patch_size) + ") exceeds image_size (" +
                std::to_string(c.image_size) + ")");
  c.source = source;
  return c;
}

CLIPTextConfig parse_text(const nlohmann::json& j, const std::string& where, const std::string& source) {
  CLIPTextConfig c;
  parse_encoder(j, where, c);
  c.vocab_size = json_require<int64_t>(j, "vocab_size", where);
  c.max_position_embeddings = json_require<int64_t>(j, "max_position_embeddings", where);
  c.bos_token_id = json_value<int64_t>(j, "bos_token_id", 49406, where);
  c.eos_token_id = json_value<int64_t>(j, "eos_token_id", 49407, where);
  c.pad_token_id = json_value<int64_t>(j, "pad_token_id", 1, where);
  check_positive(c.vocab_size, "vocab_size", where);
  check_positive(c.max_position_embeddings, "max_position_embeddings", where);
  c.source = source;
  return c;
}

// Old openai configs carry both "text_config" and "text_config_dict"; HF lets the _dict win.
nlohmann::json tower_json(const nlohmann::json& j, const std::string& key, const std::string& where) {
  nlohmann::json tower = json_require<nlohmann::json>(j, key, where);
  if (!tower.is_object()) throw Error(where + ": field '" + key + "' is not an object");
  auto dict = j.find(key + "_dict");
  if (dict != j.end() && dict->is_object()) tower.update(*dict);
  return tower;
}

nlohmann::json encoder_json(const CLIPEncoderConfig& c) {
  return {{"hidden_size", c.hidden_size},         {"intermediate_size", c.intermediate_size},
          {"num_attention_heads", c.num_attention_heads}, {"num_hidden_layers", c.num_hidden_layers},
          {"hidden_act", c.hidden_act},           {"layer_norm_eps", c.layer_norm_eps}};
}

nlohmann::json vision_json(const CLIPVisionConfig& c) {
  nlohmann::json j = encoder_json(c);
  j["image_size"] = c.image_size;
  j["patch_size"] = c.patch_size;
  j["num_channels"] = c.num_channels;
  j["model_type"] = "clip_vision_model";
  return j;
}

}  // namespace

CLIPConfig CLIPConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": not a JSON object");
  std::string model_type = json_value<std::string>(j, "model_type", "", where);
  if (model_type.empty()) model_type = j.contains("vision_config") ? "clip" : j.contains("image_size") ? "clip_vision_model" : "";
  CLIPConfig c;
  if (model_type == "clip") {
    c.vision = parse_vision(tower_json(j, "vision_config", where), where + ": vision_config", where);
    c.text = parse_text(tower_json(j, "text_config", where), where + ": text_config", where);
    c.projection_dim = json_require<int64_t>(j, "projection_dim", where);
    check_positive(c.projection_dim, "projection_dim", where);
  } else if (model_type == "clip_vision_model") {
    c.vision = parse_vision(j, where, where);
    c.vision_only = true;
    // CLIPVisionModelWithProjection stores one; load_clip sets 0 when the weights have none.
    c.projection_dim = json_value<int64_t>(j, "projection_dim", 512, where);
  } else {
    throw Error(where + ": model_type '" + model_type + "' is not a CLIP model (expected clip or clip_vision_model)");
  }
  return c;
}

nlohmann::json CLIPConfig::to_json() const {
  if (vision_only) {
    nlohmann::json j = vision_json(vision);
    j["architectures"] = {projection_dim > 0 ? "CLIPVisionModelWithProjection" : "CLIPVisionModel"};
    if (projection_dim > 0) j["projection_dim"] = projection_dim;
    j["torch_dtype"] = "float32";
    return j;
  }
  nlohmann::json t = encoder_json(text);
  t["vocab_size"] = text.vocab_size;
  t["max_position_embeddings"] = text.max_position_embeddings;
  t["bos_token_id"] = text.bos_token_id;
  t["eos_token_id"] = text.eos_token_id;
  t["pad_token_id"] = text.pad_token_id;
  t["model_type"] = "clip_text_model";
  t["projection_dim"] = projection_dim;
  nlohmann::json v = vision_json(vision);
  v["projection_dim"] = projection_dim;
  return {{"architectures", {"CLIPModel"}}, {"model_type", "clip"},    {"projection_dim", projection_dim},
          {"logit_scale_init_value", 2.6592}, {"text_config", t}, {"vision_config", v},
          {"torch_dtype", "float32"}};
}

// ---- encoder parts, smallest first -----------------------------------------------------------

namespace {
torch::nn::LayerNorm layer_norm(int64_t width, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(eps));
}
}  // namespace

CLIPAttentionImpl::CLIPAttentionImpl(const CLIPEncoderConfig& cfg)
    : num_heads(cfg.num_attention_heads), head_dim(cfg.hidden_size / cfg.num_attention_heads) {
  auto linear = [&] { return torch::nn::Linear(cfg.hidden_size, cfg.hidden_size); };
  k_proj = register_module("k_proj", linear());
  v_proj = register_module("v_proj", linear());
  q_proj = register_module("q_proj", linear());
  out_proj = register_module("out_proj", linear());
}

torch::Tensor CLIPAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, int64_t queries) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), Q = queries > 0 ? queries : T;
  auto heads = [&](const torch::Tensor& t) { return t.view({B, t.size(1), num_heads, head_dim}).transpose(1, 2); };
  const torch::Tensor xq = Q == T ? x : x.narrow(1, 0, Q).contiguous();                           // (B, Q, D)
  torch::Tensor q = heads(inference_linear(q_proj, xq) * std::pow(static_cast<double>(head_dim), -0.5));  // (B, H, Q, hd)
  torch::Tensor k = heads(inference_linear(k_proj, x));                                           // (B, H, T, hd)
  torch::Tensor v = heads(inference_linear(v_proj, x));                                           // (B, H, T, hd)
  torch::Tensor w = inference_matmul(q, k.transpose(-1, -2));                                     // (B, H, Q, T)
  if (mask.defined()) w.add_(Q == T ? mask : mask.narrow(-2, 0, Q));
  w = inference_softmax(w);  // bf16: computed in f32
  torch::Tensor o = inference_matmul(w, v).transpose(1, 2).reshape({B, Q, D});                    // (B, Q, D)
  return inference_linear(out_proj, o);
}

CLIPMLPImpl::CLIPMLPImpl(const CLIPEncoderConfig& cfg) {
  fc1 = register_module("fc1", torch::nn::Linear(cfg.hidden_size, cfg.intermediate_size));
  fc2 = register_module("fc2", torch::nn::Linear(cfg.intermediate_size, cfg.hidden_size));
  act = activation_by_name(cfg.hidden_act, cfg.source + ": hidden_act");
}

torch::Tensor CLIPMLPImpl::forward(const torch::Tensor& x) {
  return inference_linear(fc2, inference_linear(fc1, x, act));
}

CLIPEncoderLayerImpl::CLIPEncoderLayerImpl(const CLIPEncoderConfig& cfg) {
  self_attn = register_module("self_attn", CLIPAttention(cfg));
  layer_norm1 = register_module("layer_norm1", layer_norm(cfg.hidden_size, cfg.layer_norm_eps));
  mlp = register_module("mlp", CLIPMLP(cfg));
  layer_norm2 = register_module("layer_norm2", layer_norm(cfg.hidden_size, cfg.layer_norm_eps));
}

torch::Tensor CLIPEncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, int64_t queries) {
  const torch::Tensor& residual = queries > 0 ? x.narrow(1, 0, queries) : x;                     // (B, Q, D)
  torch::Tensor h = residual + self_attn(inference_layer_norm(layer_norm1, x), mask, queries);  // (B, Q, D)
  return h + mlp(inference_layer_norm(layer_norm2, h));                                        // (B, Q, D)
}

CLIPEncoderImpl::CLIPEncoderImpl(const CLIPEncoderConfig& cfg) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    layers_.push_back(CLIPEncoderLayer(cfg));
    layers->push_back(layers_.back());
  }
}

torch::Tensor CLIPEncoderImpl::forward(const torch::Tensor& x, const torch::Tensor& mask,
                                       std::vector<torch::Tensor>* hidden_states, int64_t last_queries) {
  torch::Tensor h = x;  // (B, T, D)
  if (hidden_states) hidden_states->push_back(h);
  for (size_t i = 0; i < layers_.size(); ++i) {
    h = layers_[i]->forward(h, mask, i + 1 == layers_.size() ? last_queries : 0);  // (B, T or last_queries, D)
    if (hidden_states) hidden_states->push_back(h);
  }
  return h;
}

// ---- embeddings ------------------------------------------------------------------------------

CLIPVisionEmbeddingsImpl::CLIPVisionEmbeddingsImpl(const CLIPVisionConfig& cfg) {
  const int64_t grid = cfg.image_size / cfg.patch_size;
  class_embedding = register_parameter("class_embedding", torch::randn({cfg.hidden_size}));
  patch_embedding = register_module(
      "patch_embedding", torch::nn::Conv2d(torch::nn::Conv2dOptions(cfg.num_channels, cfg.hidden_size, cfg.patch_size)
                                               .stride(cfg.patch_size)
                                               .bias(false)));
  position_embedding = register_module("position_embedding", torch::nn::Embedding(1 + grid * grid, cfg.hidden_size));
}

torch::Tensor CLIPVisionEmbeddingsImpl::forward(const torch::Tensor& pixel_values) {
  const int64_t B = pixel_values.size(0);
  torch::Tensor patches = patch_embedding(pixel_values).flatten(2).transpose(1, 2);  // (B, N, Dv), row-major
  torch::Tensor cls = class_embedding.view({1, 1, -1}).expand({B, 1, -1});           // (B, 1, Dv)
  return torch::cat({cls, patches}, 1) + position_embedding->weight;                 // (B, 1+N, Dv)
}

CLIPTextEmbeddingsImpl::CLIPTextEmbeddingsImpl(const CLIPTextConfig& cfg) {
  token_embedding = register_module("token_embedding", torch::nn::Embedding(cfg.vocab_size, cfg.hidden_size));
  position_embedding =
      register_module("position_embedding", torch::nn::Embedding(cfg.max_position_embeddings, cfg.hidden_size));
}

torch::Tensor CLIPTextEmbeddingsImpl::forward(const torch::Tensor& input_ids) {
  const int64_t T = input_ids.size(1);
  return token_embedding(input_ids) + position_embedding->weight.slice(0, 0, T);  // (B, T, Dt)
}

// ---- towers ----------------------------------------------------------------------------------

CLIPVisionTransformerImpl::CLIPVisionTransformerImpl(const CLIPVisionConfig& cfg) : config(cfg) {
  embeddings = register_module("embeddings", CLIPVisionEmbeddings(cfg));
  pre_layrnorm = register_module("pre_layrnorm", layer_norm(cfg.hidden_size, cfg.layer_norm_eps));
  encoder = register_module("encoder", CLIPEncoder(cfg));
  post_layernorm = register_module("post_layernorm", layer_norm(cfg.hidden_size, cfg.layer_norm_eps));
}

torch::Tensor CLIPVisionTransformerImpl::encoder_input(const torch::Tensor& pixel_values) {
  const int64_t S = config.image_size;
  if (pixel_values.dim() != 4 || pixel_values.size(1) != config.num_channels || pixel_values.size(2) != S ||
      pixel_values.size(3) != S)
    throw Error(config.source + ": pixel_values has shape " + shape_string(pixel_values.sizes().vec()) +
                " but image_size " + std::to_string(S) + " implies [B, " + std::to_string(config.num_channels) +
                ", " + std::to_string(S) + ", " + std::to_string(S) + "]");
  const auto& w = embeddings->class_embedding;
  torch::Tensor x = embeddings(pixel_values.to(w.device(), w.scalar_type()));  // (B, 1+N, Dv)
  return inference_layer_norm(pre_layrnorm, x);                                // (B, 1+N, Dv)
}

CLIPEncoderOutput CLIPVisionTransformerImpl::forward(const torch::Tensor& pixel_values, bool want_hidden_states) {
  CLIPEncoderOutput out;
  out.last_hidden_state = encoder->forward(encoder_input(pixel_values), torch::Tensor(),
                                           want_hidden_states ? &out.hidden_states : nullptr);  // (B, 1+N, Dv)
  out.pooler_output = post_layernorm(out.last_hidden_state.select(1, 0));                     // (B, Dv)
  return out;
}

torch::Tensor CLIPVisionTransformerImpl::pooled(const torch::Tensor& pixel_values) {
  torch::Tensor cls = encoder->forward(encoder_input(pixel_values), torch::Tensor(), nullptr, /*last_queries=*/1);  // (B, 1, Dv)
  return post_layernorm(cls.select(1, 0));                                                                 // (B, Dv)
}

CLIPTextTransformerImpl::CLIPTextTransformerImpl(const CLIPTextConfig& cfg) : config(cfg) {
  embeddings = register_module("embeddings", CLIPTextEmbeddings(cfg));
  encoder = register_module("encoder", CLIPEncoder(cfg));
  final_layer_norm = register_module("final_layer_norm", layer_norm(cfg.hidden_size, cfg.layer_norm_eps));
}

torch::Tensor CLIPTextTransformerImpl::pooled_index(const torch::Tensor& input_ids) const {
  // eos_token_id == 2 marks old openai configs whose end-of-text (49407) is the largest id.
  if (config.eos_token_id == 2) return input_ids.to(torch::kLong).argmax(-1);  // (B), first maximum
  return (input_ids == config.eos_token_id).to(torch::kInt).argmax(-1);        // (B), first eos
}

CLIPEncoderOutput CLIPTextTransformerImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                                   bool want_hidden_states) {
  const std::string where = config.source + ": text input";
  if (input_ids.dim() != 2 || input_ids.size(1) == 0)
    throw Error(where + ": input_ids has shape " + shape_string(input_ids.sizes().vec()) + ", expected [B, T]");
  if (c10::isFloatingType(input_ids.scalar_type()) || input_ids.scalar_type() == torch::kBool)
    throw Error(where + ": input_ids must be integers");
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  if (T > config.max_position_embeddings)
    throw Error(where + ": " + std::to_string(T) + " tokens exceed max_position_embeddings " +
                std::to_string(config.max_position_embeddings));
  if (attention_mask.defined() && attention_mask.sizes() != input_ids.sizes())
    throw Error(where + ": attention_mask has shape " + shape_string(attention_mask.sizes().vec()) +
                " but input_ids has " + shape_string(input_ids.sizes().vec()));
  const auto& weight = embeddings->token_embedding->weight;
  torch::Tensor ids = input_ids.to(weight.device(), torch::kLong);
  torch::Tensor x;
  try {
    x = embeddings(ids);  // (B, T, Dt)
  } catch (const c10::Error&) {
    throw Error(where + ": token id outside the vocabulary [0, " + std::to_string(config.vocab_size) + ")");
  }

  const torch::ScalarType dtype = weight.scalar_type();
  torch::Tensor mask = torch::full({T, T}, dtype_lowest(dtype), torch::TensorOptions().dtype(dtype).device(weight.device()))
                           .triu(1)
                           .view({1, 1, T, T});  // (1, 1, T, T) causal
  // Both masks are added to the scores, so a padded key above the diagonal gets min + min = -inf.
  if (attention_mask.defined()) mask = mask + padding_mask(attention_mask.to(weight.device()), dtype);  // (B, 1, T, T)

  CLIPEncoderOutput out;
  x = encoder->forward(x, mask, want_hidden_states ? &out.hidden_states : nullptr);
  out.last_hidden_state = final_layer_norm(x);  // (B, T, Dt)
  torch::Tensor rows = torch::arange(B, torch::TensorOptions().dtype(torch::kLong).device(weight.device()));
  out.pooler_output = out.last_hidden_state.index({rows, pooled_index(ids).to(torch::kLong)});  // (B, Dt)
  return out;
}

// ---- the model -------------------------------------------------------------------------------

CLIPModelImpl::CLIPModelImpl(const CLIPConfig& cfg, bool with_text) : config(cfg) {
  const bool text = with_text && !cfg.vision_only;
  if (text) text_model = register_module("text_model", CLIPTextTransformer(cfg.text));
  vision_model = register_module("vision_model", CLIPVisionTransformer(cfg.vision));
  if (cfg.projection_dim > 0) {
    auto projection = [&](int64_t in) { return torch::nn::Linear(torch::nn::LinearOptions(in, cfg.projection_dim).bias(false)); };
    visual_projection = register_module("visual_projection", projection(cfg.vision.hidden_size));
    if (text) text_projection = register_module("text_projection", projection(cfg.text.hidden_size));
  }
  if (!cfg.vision_only) logit_scale = register_parameter("logit_scale", torch::full({}, 2.6592));  // HF's init value, float32
}

torch::Tensor CLIPModelImpl::image_embeds(const torch::Tensor& vision_pooled) {
  if (!visual_projection)
    throw Error(config.vision.source + ": this CLIP vision model has no visual_projection (no image embeddings)");
  return visual_projection(vision_pooled);  // (B, P)
}

torch::Tensor CLIPModelImpl::text_embeds(const torch::Tensor& text_pooled) {
  if (!text_projection) throw Error(config.vision.source + ": this CLIP model was loaded without its text tower");
  return text_projection(text_pooled);  // (B, P)
}

torch::Tensor CLIPModelImpl::logits_per_image(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds) {
  if (!logit_scale.defined()) throw Error(config.vision.source + ": this CLIP vision model has no logit_scale");
  torch::Tensor img = image_embeds / image_embeds.norm(2, -1, true);  // (Bi, P)
  torch::Tensor txt = text_embeds / text_embeds.norm(2, -1, true);    // (Bt, P)
  return logit_scale.exp() * torch::matmul(img, txt.t());             // (Bi, Bt)
}

CLIPModel load_clip(const std::string& dir, const CLIPLoadOptions& opts) {
  const std::string config_path = dir + "/config.json";
  CLIPConfig cfg = CLIPConfig::from_json(read_json(config_path), config_path);
  auto src = open_weights(find_weights_file(dir));
  if (cfg.vision_only && !src->contains("visual_projection.weight")) cfg.projection_dim = 0;  // CLIPVisionModel

  CLIPModel model(cfg, opts.with_text);
  WeightLoadOptions load;
  load.dtype = opts.dtype;
  load.config_path = config_path;
  load_weights(*model, *src, load);  // *position_ids and, vision-only, the text tower are not parameters
  model->eval();
  return model;
}

}  // namespace clipcap
