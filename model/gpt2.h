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

  int64_t inner() const { return n_inner > 0 ? n_inner : 4 * n_embd; }
  static GPT2Config from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;  // HF layout, readable by transformers
};

// Per-layer keys/values after the head split, HF "present" layout: (B, H, P, hd).
struct KVCache {
  std::vector<torch::Tensor> keys, values;
  int64_t length() const;                    // P (0 when empty)
  void reorder(const torch::Tensor& index);  // beam search: keep rows index (B_new) of the batch
  void clear();
};

// TODO(gpt2 helper): GPT2Attention / GPT2MLP / GPT2Block declarations (HF-named: c_attn, c_proj,
// c_fc, ln_1, ln_2), smallest parts first.

class GPT2Impl : public torch::nn::Module {
 public:
  explicit GPT2Impl(const GPT2Config& cfg);

  torch::Tensor embed(const torch::Tensor& ids);  // wte(ids): (B, T) -> (B, T, D)
  // inputs_embeds (B, T, D); positions are P..P+T-1 (P = cache length) and wpe is added here,
  // as HF does. attention_mask: optional (B, P+T) of 1 = attend, 0 = padding. cache: appended to.
  torch::Tensor forward(const torch::Tensor& inputs_embeds, const torch::Tensor& attention_mask = {},
                        KVCache* cache = nullptr);
  torch::Tensor logits(const torch::Tensor& hidden);  // hidden @ lm_head^T (tied to wte unless stored)

  GPT2Config config;
  torch::nn::Embedding wte{nullptr}, wpe{nullptr};
  torch::nn::ModuleList h{nullptr};
  torch::nn::LayerNorm ln_f{nullptr};
  torch::Tensor lm_head;  // undefined = tied to wte.weight
};
TORCH_MODULE(GPT2);

struct GPT2LoadOptions {
  torch::ScalarType dtype = torch::kFloat32;
};

// path: an HF GPT-2 directory (config.json + model.safetensors | pytorch_model.bin). Accepts keys
// with or without "transformer.", ignores attn.bias / attn.masked_bias buffers, ties lm_head.
GPT2 load_gpt2(const std::string& dir, const GPT2LoadOptions& opts = {});

}  // namespace clipcap
