#include "model/gpt2.h"

#include <torch/nn/init.h>
#include <torch/torch.h>

#include <cmath>

#include "common/json_util.h"
#include "model/kernels/activations.h"
#include "model/kernels/attention_masks.h"
#include "model/kernels/decode_attention.h"
#include "model/kernels/inference_matmul.h"
#include "model/kernels/int8_linear.h"
#include "model/kernels/inference_norm.h"
#include "model/weights/load_weights.h"

namespace clipcap {

// ---- config ----------------------------------------------------------------------------------

GPT2Config GPT2Config::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": not a JSON object");
  std::string model_type = json_value<std::string>(j, "model_type", "gpt2", where);
  if (model_type != "gpt2")
    throw Error(where + ": model_type '" + model_type + "' is not a GPT-2 config (expected gpt2)");
  GPT2Config c;
  c.vocab_size = json_require<int64_t>(j, "vocab_size", where);
  // n_ctx is the legacy spelling of n_positions; old configs may carry only it.
  c.n_positions = j.contains("n_positions") ? json_require<int64_t>(j, "n_positions", where)
                                            : json_require<int64_t>(j, "n_ctx", where);
  c.n_embd = json_require<int64_t>(j, "n_embd", where);
  c.n_layer = json_require<int64_t>(j, "n_layer", where);
  c.n_head = json_require<int64_t>(j, "n_head", where);
  c.n_inner = json_value<int64_t>(j, "n_inner", 0, where);
  c.activation_function = json_value<std::string>(j, "activation_function", "gelu_new", where);
  c.layer_norm_epsilon = json_value<double>(j, "layer_norm_epsilon", 1e-5, where);
  c.bos_token_id = json_value<int64_t>(j, "bos_token_id", 50256, where);
  c.eos_token_id = json_value<int64_t>(j, "eos_token_id", 50256, where);
  c.embd_pdrop = json_value<double>(j, "embd_pdrop", 0.1, where);
  c.attn_pdrop = json_value<double>(j, "attn_pdrop", 0.1, where);
  c.resid_pdrop = json_value<double>(j, "resid_pdrop", 0.1, where);

  for (auto [name, value] : {std::pair{"vocab_size", c.vocab_size}, {"n_positions", c.n_positions},
                             {"n_embd", c.n_embd}, {"n_layer", c.n_layer}, {"n_head", c.n_head}})
    if (value <= 0) throw Error(where + ": field '" + name + "' must be positive (got " + std::to_string(value) + ")");
  for (auto [name, p] : {std::pair{"embd_pdrop", c.embd_pdrop}, {"attn_pdrop", c.attn_pdrop}, {"resid_pdrop", c.resid_pdrop}})
    if (!(p >= 0.0 && p < 1.0)) throw Error(where + ": field '" + name + "' must be in [0, 1)");
  if (c.n_inner < 0) throw Error(where + ": field 'n_inner' must be positive or null");
  if (c.n_embd % c.n_head != 0)
    throw Error(where + ": field 'n_embd' (" + std::to_string(c.n_embd) + ") is not divisible by n_head (" +
                std::to_string(c.n_head) + ")");
  activation_by_name(c.activation_function, where + ": activation_function");
  return c;
}

nlohmann::json GPT2Config::to_json() const {
  return {{"architectures", {"GPT2LMHeadModel"}},
          {"model_type", "gpt2"},
          {"vocab_size", vocab_size},
          {"n_positions", n_positions},
          {"n_ctx", n_positions},
          {"n_embd", n_embd},
          {"n_layer", n_layer},
          {"n_head", n_head},
          {"n_inner", n_inner > 0 ? nlohmann::json(n_inner) : nlohmann::json(nullptr)},
          {"activation_function", activation_function},
          {"layer_norm_epsilon", layer_norm_epsilon},
          {"bos_token_id", bos_token_id},
          {"eos_token_id", eos_token_id},
          {"embd_pdrop", embd_pdrop},
          {"attn_pdrop", attn_pdrop},
          {"resid_pdrop", resid_pdrop},
          {"torch_dtype", "float32"}};
}

// ---- KV cache --------------------------------------------------------------------------------

int64_t KVCache::length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }

namespace {

// Whether `past` (B, H, P, hd) is the first P positions of `room` (B, H, capacity, hd).
bool views_room(const torch::Tensor& past, const torch::Tensor& room) {
  return past.defined() && room.defined() && past.data_ptr() == room.data_ptr() && past.size(0) == room.size(0) &&
         past.stride(0) == room.stride(0) && past.stride(1) == room.stride(1);
}

// past (B, H, P, hd) or undefined, viewing `room` when that has space; new_kv (B, H, T, hd).
torch::Tensor append_kv(torch::Tensor& room, const torch::Tensor& past, const torch::Tensor& new_kv) {
  if (torch::GradMode::is_enabled() && (new_kv.requires_grad() || (past.defined() && past.requires_grad())))
    return past.defined() ? torch::cat({past, new_kv}, 2) : new_kv;  // training: keep the graph
  const int64_t P = past.defined() ? past.size(2) : 0, T = new_kv.size(2);
  if (!views_room(past, room) || P + T > room.size(2)) {
    // Room for what is there, this step and some more: doubling keeps the copies to O(log steps).
    const int64_t capacity = std::max<int64_t>(2 * (P + T), P + T + 32);
    auto sizes = new_kv.sizes().vec();
    sizes[2] = capacity;
    torch::Tensor grown = torch::empty(sizes, new_kv.options());  // (B, H, capacity, hd)
    if (P > 0) grown.narrow(2, 0, P).copy_(past);
    room = grown;
  }
  room.narrow(2, P, T).copy_(new_kv);
  return room.narrow(2, 0, P + T);  // (B, H, P+T, hd)
}

void reorder_kv(torch::Tensor& room, torch::Tensor& past, const torch::Tensor& index) {
  if (!past.defined()) return;
  if (views_room(past, room) && !torch::GradMode::is_enabled()) {
    const int64_t P = past.size(2);
    room = room.index_select(0, index);  // (B_new, H, capacity, hd): the room moves along
    past = room.narrow(2, 0, P);
  } else {
    past = past.index_select(0, index);  // (B_new, H, P, hd)
  }
}

}  // namespace

void KVCache::reorder(const torch::Tensor& index) {
  key_room_.resize(keys.size());
  value_room_.resize(values.size());
  for (size_t i = 0; i < keys.size(); ++i) reorder_kv(key_room_[i], keys[i], index);
  for (size_t i = 0; i < values.size(); ++i) reorder_kv(value_room_[i], values[i], index);
}

void KVCache::clear() {
  keys.clear();
  values.clear();
  key_room_.clear();
  value_room_.clear();
}

void KVCache::append(size_t layer, const torch::Tensor& k, const torch::Tensor& v) {
  if (keys.size() <= layer) keys.resize(layer + 1), values.resize(layer + 1);
  if (key_room_.size() < keys.size()) key_room_.resize(keys.size()), value_room_.resize(keys.size());
  keys[layer] = append_kv(key_room_[layer], keys[layer], k);
  values[layer] = append_kv(value_room_[layer], values[layer], v);
}

// ---- modules, smallest first -----------------------------------------------------------------

Conv1DImpl::Conv1DImpl(int64_t in_features, int64_t out_features) {
  // Initialised by GPT2Impl::reset_parameters (the std depends on the layer's role).
  weight = register_parameter("weight", torch::zeros({in_features, out_features}));
  bias = register_parameter("bias", torch::zeros({out_features}));
}

torch::Tensor Conv1DImpl::forward(const torch::Tensor& x, Activation act) {
  if (is_quantized_int8(weight)) return int8_linear(x, int8_parameter(*this, "weight"), bias, act);
  return inference_linear(x, weight, bias, WeightLayout::in_out, act);  // (..., out)
}

GPT2AttentionImpl::GPT2AttentionImpl(const GPT2Config& cfg)
    : n_head(cfg.n_head), head_dim(cfg.n_embd / cfg.n_head), attn_pdrop(cfg.attn_pdrop), resid_pdrop(cfg.resid_pdrop) {
  c_attn = register_module("c_attn", Conv1D(cfg.n_embd, 3 * cfg.n_embd));
  c_proj = register_module("c_proj", Conv1D(cfg.n_embd, cfg.n_embd));
}

torch::Tensor GPT2AttentionImpl::forward(const torch::Tensor& x, const GPT2AttentionMasks& masks, KVCache* cache,
                                         size_t layer) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  auto qkv = c_attn(x).split(D, -1);                                // 3 x (B, T, D)
  auto heads = [&](const torch::Tensor& t) { return t.view({B, T, n_head, head_dim}).permute({0, 2, 1, 3}); };
  torch::Tensor q = heads(qkv[0]);                                  // (B, H, T, hd)
  torch::Tensor k = heads(qkv[1]);                                  // (B, H, T, hd)
  torch::Tensor v = heads(qkv[2]);                                  // (B, H, T, hd)
  if (cache) {
    cache->append(layer, k, v);
    k = cache->keys[layer];                                         // (B, H, P+T, hd)
    v = cache->values[layer];                                       // (B, H, P+T, hd)
  }

  // One new token over its cache, nothing masked (a decoding step): fused (decode_attention.h).
  if (T == 1 && !masks.causal_keep.defined() && !masks.padding.defined() && !is_training() &&
      decode_attention_applies(q, k, v))
    return c_proj(decode_attention(q, k, v, 1.0 / std::sqrt(static_cast<double>(head_dim))));  // (B, 1, D)

  // HF divides by a float32 scalar sqrt(hd), then masks with where(causal, w, min) (not a sum).
  torch::Tensor w = inference_matmul(q, k.transpose(-1, -2)).div_(std::sqrt(static_cast<double>(head_dim)));  // (B, H, T, P+T)
  if (masks.causal_keep.defined()) w.masked_fill_(masks.causal_keep.logical_not(), dtype_lowest(w.scalar_type()));
  if (masks.padding.defined()) w.add_(masks.padding);
  // Low-precision weights still get a float32 softmax: the sum over keys is where bf16 loses most.
  w = inference_softmax(w);
  if (is_training() && attn_pdrop > 0) w = torch::dropout(w, attn_pdrop, true);
  torch::Tensor o = inference_matmul(w, v);                         // (B, H, T, hd)
  torch::Tensor out = c_proj(o.permute({0, 2, 1, 3}).reshape({B, T, D}));  // (B, T, D)
  return is_training() && resid_pdrop > 0 ? torch::dropout(out, resid_pdrop, true) : out;
}

GPT2MLPImpl::GPT2MLPImpl(const GPT2Config& cfg) {
  c_fc = register_module("c_fc", Conv1D(cfg.n_embd, cfg.inner()));
  c_proj = register_module("c_proj", Conv1D(cfg.inner(), cfg.n_embd));
  act = activation_by_name(cfg.activation_function, "GPT-2 config: activation_function");
  resid_pdrop = cfg.resid_pdrop;
}

torch::Tensor GPT2MLPImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = c_proj(c_fc(x, act));  // (B, T, D)
  return is_training() && resid_pdrop > 0 ? torch::dropout(out, resid_pdrop, true) : out;
}

GPT2BlockImpl::GPT2BlockImpl(const GPT2Config& cfg) {
  auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.n_embd}).eps(cfg.layer_norm_epsilon)); };
  ln_1 = register_module("ln_1", ln());
  attn = register_module("attn", GPT2Attention(cfg));
  ln_2 = register_module("ln_2", ln());
  mlp = register_module("mlp", GPT2MLP(cfg));
}

torch::Tensor GPT2BlockImpl::forward(const torch::Tensor& x, const GPT2AttentionMasks& masks, KVCache* cache,
                                     size_t layer) {
  torch::Tensor h = x + attn(inference_layer_norm(ln_1, x), masks, cache, layer);  // (B, T, D)
  return h + mlp(inference_layer_norm(ln_2, h));                                                                 // (B, T, D)
}

// ---- the model -------------------------------------------------------------------------------

GPT2Impl::GPT2Impl(const GPT2Config& cfg) : config(cfg) {
  wte = register_module("wte", torch::nn::Embedding(cfg.vocab_size, cfg.n_embd));
  wpe = register_module("wpe", torch::nn::Embedding(cfg.n_positions, cfg.n_embd));
  h = register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.n_layer; ++i) {
    blocks_.push_back(GPT2Block(cfg));
    h->push_back(blocks_.back());
  }
  ln_f = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg.n_embd}).eps(cfg.layer_norm_epsilon)));
  reset_parameters();
}

void GPT2Impl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config.n_layer));
  for (auto& block : blocks_) {
    for (Conv1D* c : {&block->attn->c_attn, &block->attn->c_proj, &block->mlp->c_fc, &block->mlp->c_proj}) {
      const bool residual = c == &block->attn->c_proj || c == &block->mlp->c_proj;
      torch::nn::init::normal_((*c)->weight, 0.0, residual ? residual_std : 0.02);
      (*c)->bias.zero_();
    }
    for (auto* ln : {&block->ln_1, &block->ln_2}) {
      (*ln)->weight.fill_(1.0);
      (*ln)->bias.zero_();
    }
  }
  ln_f->weight.fill_(1.0);
  ln_f->bias.zero_();
  torch::nn::init::normal_(wte->weight, 0.0, 0.02);
  torch::nn::init::normal_(wpe->weight, 0.0, 0.02);
}

void GPT2Impl::untie_lm_head(const torch::Tensor& weight) {
  if (lm_head.defined()) {
    torch::NoGradGuard no_grad;
    lm_head.set_data(weight);
  } else {
    lm_head = register_parameter("lm_head", weight);
  }
}

torch::Tensor GPT2Impl::embed(const torch::Tensor& ids) {
  if (ids.scalar_type() != torch::kLong && ids.scalar_type() != torch::kInt)
    throw Error(std::string("GPT-2 embed: token ids must be integers, got ") + c10::toString(ids.scalar_type()));
  try {
    return wte(ids);  // (B, T, D)
  } catch (const c10::Error&) {
    throw Error("GPT-2 embed: token id outside the vocabulary [0, " + std::to_string(config.vocab_size) + ")");
  }
}

torch::Tensor GPT2Impl::forward(const torch::Tensor& inputs_embeds, const torch::Tensor& attention_mask,
                                KVCache* cache) {
  if (inputs_embeds.dim() != 3 || inputs_embeds.size(2) != config.n_embd)
    throw Error("GPT-2 forward: inputs_embeds has shape " + shape_string(inputs_embeds.sizes().vec()) +
                ", expected [B, T, " + std::to_string(config.n_embd) + "]");
  const int64_t B = inputs_embeds.size(0), T = inputs_embeds.size(1);
  const int64_t P = cache ? cache->length() : 0;
  if (P + T > config.n_positions)
    throw Error("GPT-2 forward: " + std::to_string(P + T) + " positions exceed n_positions " +
                std::to_string(config.n_positions));
  if (cache && !cache->keys.empty() && (cache->keys.size() != blocks_.size() || cache->values.size() != blocks_.size()))
    throw Error("GPT-2 forward: KV cache has " + std::to_string(cache->keys.size()) + " layers, the model " +
                std::to_string(blocks_.size()));
  if (cache && P > 0 && cache->keys[0].size(0) != B)
    throw Error("GPT-2 forward: KV cache holds batch " + std::to_string(cache->keys[0].size(0)) + ", input has " +
                std::to_string(B));

  const torch::ScalarType dtype = wte->weight.scalar_type();
  const torch::Device device = wte->weight.device();
  GPT2AttentionMasks masks;
  // A single new token sees every cached key, so the causal mask is only needed for T > 1.
  if (T > 1)
    masks.causal_keep = torch::ones({T, P + T}, torch::TensorOptions().dtype(torch::kBool).device(device)).tril(P);  // (T, P+T)
  if (attention_mask.defined()) {
    if (attention_mask.dim() != 2 || attention_mask.size(0) != B || attention_mask.size(1) != P + T)
      throw Error("GPT-2 forward: attention_mask has shape " + shape_string(attention_mask.sizes().vec()) +
                  ", expected [" + std::to_string(B) + ", " + std::to_string(P + T) + "] (cached + new tokens)");
    // An all-ones mask adds exact zeros: skip it (the common unpadded decode step).
    if (!attention_mask.to(torch::kBool).all().item<bool>()) masks.padding = padding_mask(attention_mask.to(device), dtype);  // (B, 1, 1, P+T)
  }

  // HF semantics: positions are P..P+T-1 whatever the padding (only generate() derives them from the mask).
  torch::Tensor positions = torch::arange(P, P + T, torch::TensorOptions().dtype(torch::kLong).device(device));  // (T)
  torch::Tensor x = inputs_embeds.to(device, dtype) + wpe(positions);  // (B, T, D)
  if (is_training() && config.embd_pdrop > 0) x = torch::dropout(x, config.embd_pdrop, true);

  for (size_t i = 0; i < blocks_.size(); ++i) x = blocks_[i]->forward(x, masks, cache, i);
  return inference_layer_norm(ln_f, x);  // (B, T, D)
}

namespace {

// hidden @ lm_head^T through the int8 or the oneDNN product; out_dtype unset: hidden's dtype.
torch::Tensor lm_head_product(GPT2Impl& g, const torch::Tensor& hidden, c10::optional<at::ScalarType> out_dtype) {
  if (is_quantized_int8(g.lm_head)) {
    torch::Tensor y = int8_linear(hidden, int8_parameter(g, "lm_head"), torch::Tensor());
    return out_dtype ? y.to(*out_dtype) : y;
  }
  const torch::Tensor& w = g.lm_head.defined() ? g.lm_head : g.wte->weight;  // (V, D)
  return inference_linear(hidden, w, torch::Tensor(), WeightLayout::out_in, nullptr, out_dtype);  // (..., V)
}

}  // namespace

torch::Tensor GPT2Impl::logits(const torch::Tensor& hidden) { return lm_head_product(*this, hidden, c10::nullopt); }

torch::Tensor GPT2Impl::logits_f32(const torch::Tensor& hidden) { return lm_head_product(*this, hidden, torch::kFloat32); }

// ---- loading ---------------------------------------------------------------------------------

GPT2 load_gpt2(const std::string& dir, const GPT2LoadOptions& opts) {
  const std::string config_path = dir + "/config.json";
  GPT2Config cfg = GPT2Config::from_json(read_json(config_path), config_path);
  auto src = open_weights(find_weights_file(dir));

  GPT2 model(cfg);
  WeightLoadOptions load;
  load.prefixes = {"", "transformer."};  // hub gpt2 layout, and GPT2LMHeadModel.state_dict()
  load.dtype = opts.dtype;
  load.config_path = config_path;
  load_weights(*model, *src, load);

  // A stored lm_head.weight is usually wte again (tied); only a different one becomes its own parameter.
  if (src->contains("lm_head.weight")) {
    std::vector<int64_t> want = model->wte->weight.sizes().vec();
    if (src->shape("lm_head.weight") != want)
      throw Error(src->path() + ": tensor 'lm_head.weight' has shape " + shape_string(src->shape("lm_head.weight")) +
                  " but " + config_path + " implies " + shape_string(want));
    torch::Tensor head = src->load("lm_head.weight", opts.dtype);
    if (!torch::equal(head, model->wte->weight)) model->untie_lm_head(head);
  }
  model->eval();
  return model;
}

}  // namespace clipcap
