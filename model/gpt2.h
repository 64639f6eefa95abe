// HF-compatible GPT-2 (GPT2LMHeadModel) in libtorch, with a KV cache.
//
//   auto gpt2 = clipcap::load_gpt2("gpt2");                    // dir with config.json + weights
//   torch::NoGradGuard no_grad;
//   clipcap::KVCache cache;
//   torch::Tensor h = gpt2->forward(gpt2->embed(ids), {}, &cache);   // (B, T, D) after ln_f
//   torch::Tensor logits = gpt2->logits(h.select(1, -1));            // (B, V)
//
// Parameter names match the HF weights (wte, wpe, h.N.attn.c_attn, ln_f); Conv1D weights are
// stored [in, out] as in HF. Sizes come from config.json only.
// Shapes: B batch, T new tokens, P cached tokens, D n_embd, H heads, hd head dim, V vocab.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "model/kernels/activations.h"

namespace clipcap {

struct GPT2Config {
  int64_t vocab_size = 50257;
  int64_t n_positions = 1024;
  int64_t n_embd = 768;
  int64_t n_layer = 12;
  int64_t n_head = 12;
  int64_t n_inner = 0;  // 0 = 4 * n_embd (HF: null/absent)
  std::string activation_function = "gelu_new";  // gelu_new | gelu | relu | quick_gelu ...
  double layer_norm_epsilon = 1e-5;
  int64_t bos_token_id = 50256;
  int64_t eos_token_id = 50256;
  // Dropout, applied only in training mode (module.train()); HF's defaults.
  double embd_pdrop = 0.1, attn_pdrop = 0.1, resid_pdrop = 0.1;

  int64_t inner() const { return n_inner > 0 ? n_inner : 4 * n_embd; }
  static GPT2Config from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;  // HF layout, readable by transformers
};

// Per-layer keys/values after the head split, HF "present" layout: (B, H, P, hd). Without
// autograd they are views of buffers with room for more tokens, so a decoding step writes only its
// own token instead of copying the whole cache (torch::cat per layer per step was a noticeable part
// of a batched decode: bench/README.md, "Measurements behind code decisions").
struct KVCache {
  std::vector<torch::Tensor> keys, values;
  int64_t length() const;                    // P (0 when empty)
  void reorder(const torch::Tensor& index);  // beam search: keep rows index (B_new) of the batch
  void clear();
  // keys/values[layer] become (B, H, P+T, hd) with k, v (B, H, T, hd) after them.
  void append(size_t layer, const torch::Tensor& k, const torch::Tensor& v);

 private:
  std::vector<torch::Tensor> key_room_, value_room_;  // (B, H, capacity, hd); keys[i] = its first P
};

// HF's Conv1D: weight (in, out), y = x W + b (the transpose of nn.Linear's layout).
struct Conv1DImpl : torch::nn::Module {
  Conv1DImpl(int64_t in_features, int64_t out_features);
  // (..., in) -> act(x W + b) (..., out); act nullptr: none. The activation is fused where it can be.
  torch::Tensor forward(const torch::Tensor& x, Activation act = nullptr);
  torch::Tensor weight, bias;
};
TORCH_MODULE(Conv1D);

// What one forward step shares across layers; masks are built once per step, and left undefined
// when nothing is masked (a T=1 decode step without padding).
struct GPT2AttentionMasks {
  torch::Tensor causal_keep;  // (T, P+T) bool, true = key visible; undefined: all visible
  torch::Tensor padding;      // (B, 1, 1, P+T) additive (1 - mask) * min; undefined: no padding
};

struct GPT2AttentionImpl : torch::nn::Module {
  explicit GPT2AttentionImpl(const GPT2Config& cfg);
  // x (B, T, D); cache (optional): layer `layer`'s P cached keys/values, gets this step's appended.
  torch::Tensor forward(const torch::Tensor& x, const GPT2AttentionMasks& masks, KVCache* cache, size_t layer);
  int64_t n_head, head_dim;
  double attn_pdrop, resid_pdrop;
  Conv1D c_attn{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(GPT2Attention);

struct GPT2MLPImpl : torch::nn::Module {
  explicit GPT2MLPImpl(const GPT2Config& cfg);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, D) -> (B, T, D)
  Conv1D c_fc{nullptr}, c_proj{nullptr};
  Activation act = nullptr;
  double resid_pdrop;
};
TORCH_MODULE(GPT2MLP);

struct GPT2BlockImpl : torch::nn::Module {
  explicit GPT2BlockImpl(const GPT2Config& cfg);
  torch::Tensor forward(const torch::Tensor& x, const GPT2AttentionMasks& masks, KVCache* cache, size_t layer);
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  GPT2Attention attn{nullptr};
  GPT2MLP mlp{nullptr};
};
TORCH_MODULE(GPT2Block);

class GPT2Impl : public torch::nn::Module {
 public:
  explicit GPT2Impl(const GPT2Config& cfg);

  torch::Tensor embed(const torch::Tensor& ids);  // wte(ids): (B, T) -> (B, T, D)
  // inputs_embeds (B, T, D); positions are P..P+T-1 (P = cache length) and wpe is added here,
  // as HF does. attention_mask: optional (B, P+T) of 1 = attend, 0 = padding. cache: appended to.
  torch::Tensor forward(const torch::Tensor& inputs_embeds, const torch::Tensor& attention_mask = {},
                        KVCache* cache = nullptr);
  torch::Tensor logits(const torch::Tensor& hidden);  // hidden @ lm_head^T (tied to wte unless stored)
  torch::Tensor logits_f32(const torch::Tensor& hidden);  // the same in f32 whatever the model's dtype

  GPT2Config config;
  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  torch::nn::ModuleList h{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};
  torch::Tensor lm_head;  // undefined = tied to wte.weight

  // Makes lm_head its own parameter (registered as "lm_head", stored as "lm_head.weight"): for
  // files whose lm_head.weight differs from wte.weight.
  void untie_lm_head(const torch::Tensor& weight);

  // HF's GPT2PreTrainedModel._init_weights for a model trained from scratch: every weight
  // N(0, 0.02), the residual projections (c_proj) N(0, 0.02/sqrt(2 n_layer)), zero biases, unit
  // LayerNorms.
  void reset_parameters();

 private:
  std::vector<GPT2Block> blocks_;  // the entries of h, without a cast per step
};
TORCH_MODULE(GPT2);

struct GPT2LoadOptions {
  torch::ScalarType dtype = torch::kFloat32;
};

// path: an HF GPT-2 directory (config.json + model.safetensors | pytorch_model.bin). Accepts keys
// with or without "transformer.", ignores attn.bias / attn.masked_bias buffers, ties lm_head.
GPT2 load_gpt2(const std::string& dir, const GPT2LoadOptions& opts = {});

}  // namespace clipcap
