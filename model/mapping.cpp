#include "model/mapping.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/dropout.h>
#include <torch/nn/init.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"
#include "model/kernels/int8_linear.h"

namespace clipcap {

namespace F = torch::nn::functional;

MappingConfig MappingConfig::from_json(const nlohmann::json& j, int64_t input_size, int64_t output_size,
                                       const std::string& where) {
  MappingConfig c;
  c.input_size = input_size;
  c.output_size = output_size;
  c.ep_len = json_require<int64_t>(j, "ep_len", where);
  c.num_layers = json_require<int64_t>(j, "num_layers", where);
  c.n_heads = json_require<int64_t>(j, "n_heads", where);
  c.forward_expansion = json_require<int64_t>(j, "forward_expansion", where);
  c.dropout = json_value<double>(j, "dropout", 0.0, where);
  c.validate(where);
  return c;
}

nlohmann::json MappingConfig::to_json() const {
  return {{"ep_len", ep_len},
          {"num_layers", num_layers},
          {"n_heads", n_heads},
          {"forward_expansion", forward_expansion},
          {"dropout", dropout}};
}

void MappingConfig::validate(const std::string& where) const {
  auto positive = [&](const char* name, int64_t v) {
    if (v <= 0) throw Error(where + ": mapping " + name + " must be > 0 (got " + std::to_string(v) + ")");
  };
  positive("input_size", input_size);
  positive("output_size", output_size);
  positive("ep_len", ep_len);
  if (num_layers < 0) throw Error(where + ": mapping num_layers must be >= 0");
  positive("n_heads", n_heads);
  positive("forward_expansion", forward_expansion);
  if (input_size % n_heads != 0)
    throw Error(where + ": mapping n_heads " + std::to_string(n_heads) + " does not divide the width " +
                std::to_string(input_size));
  if (!(dropout >= 0.0 && dropout < 1.0)) throw Error(where + ": mapping dropout must be in [0, 1)");
}

// ---- attention -------------------------------------------------------------------------------

MultiheadSelfAttentionImpl::MultiheadSelfAttentionImpl(int64_t embed_dim, int64_t num_heads, double dropout)
    : embed_dim(embed_dim), num_heads(num_heads), dropout(dropout) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * embed_dim, embed_dim}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * embed_dim}));
  out_proj = register_module("out_proj", torch::nn::Linear(embed_dim, embed_dim));
  torch::nn::init::xavier_uniform_(in_proj_weight);
}

torch::Tensor MultiheadSelfAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), L = x.size(1), hd = embed_dim / num_heads;
  const torch::Tensor qkv_rows = is_quantized_int8(in_proj_weight)
                                     ? int8_linear(x, int8_parameter(*this, "in_proj_weight"), in_proj_bias)
                                     : F::linear(x, in_proj_weight, in_proj_bias);
  auto qkv = qkv_rows.chunk(3, -1);  // 3 x (B, L, D)
  auto heads = [&](const torch::Tensor& t) { return t.view({B, L, num_heads, hd}).transpose(1, 2); };
  auto q = heads(qkv[0]) / std::sqrt(static_cast<double>(hd));  // (B, H, L, hd)
  auto k = heads(qkv[1]), v = heads(qkv[2]);                     // (B, H, L, hd)
  auto w = torch::softmax(torch::matmul(q, k.transpose(-2, -1)), -1);  // (B, H, L, L)
  w = F::dropout(w, F::DropoutFuncOptions().p(dropout).training(is_training()));
  auto o = torch::matmul(w, v).transpose(1, 2).reshape({B, L, embed_dim});  // (B, L, D)
  return linear_forward(out_proj, o);
}

// ---- encoder ---------------------------------------------------------------------------------

TransformerEncoderLayerImpl::TransformerEncoderLayerImpl(int64_t d_model, int64_t n_heads, int64_t dim_feedforward,
                                                         double dropout)
    : dropout(dropout) {
  self_attn = register_module("self_attn", MultiheadSelfAttention(d_model, n_heads, dropout));
  linear1 = register_module("linear1", torch::nn::Linear(d_model, dim_feedforward));
  linear2 = register_module("linear2", torch::nn::Linear(dim_feedforward, d_model));
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model}).eps(1e-5)));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model}).eps(1e-5)));
}

torch::Tensor TransformerEncoderLayerImpl::forward(const torch::Tensor& x) {
  auto drop = [&](const torch::Tensor& t) {
    return F::dropout(t, F::DropoutFuncOptions().p(dropout).training(is_training()));
  };
  auto h = norm1(x + drop(self_attn(x)));                                      // (B, L, D)
  return norm2(h + drop(linear_forward(linear2, drop(torch::relu(linear_forward(linear1, h))))));  // (B, L, D)
}

TransformerEncoderImpl::TransformerEncoderImpl(const MappingConfig& cfg) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_layers; ++i)
    layers->push_back(TransformerEncoderLayer(cfg.input_size, cfg.n_heads, cfg.input_size * cfg.forward_expansion,
                                              cfg.dropout));
}

torch::Tensor TransformerEncoderImpl::forward(torch::Tensor x) {
  for (const auto& layer : *layers) x = layer->as<TransformerEncoderLayer>()->forward(x);
  return x;
}

// ---- mapping ---------------------------------------------------------------------------------

MappingImpl::MappingImpl(const MappingConfig& cfg) : config(cfg) {
  config.validate("mapping config");
  transformer_encoder = register_module("transformer_encoder", TransformerEncoder(config));
  mapper = register_module("mapper", torch::nn::Linear(config.input_size, config.ep_len * config.output_size));
  reset_parameters();
}

void MappingImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* lin = m->as<torch::nn::Linear>()) {
      torch::nn::init::kaiming_normal_(lin->weight, 0.0, torch::kFanIn, torch::kReLU);
      if (lin->bias.defined()) lin->bias.zero_();
    } else if (auto* attn = m->as<MultiheadSelfAttention>()) {
      torch::nn::init::xavier_uniform_(attn->in_proj_weight);
      attn->in_proj_bias.zero_();
    }
  }
}

torch::Tensor MappingImpl::forward(const torch::Tensor& embeds) {
  TORCH_CHECK(embeds.dim() == 2, "Mapping::forward expects (B, Din)");
  auto x = transformer_encoder(embeds.unsqueeze(1));                              // (B, 1, Din)
  return linear_forward(mapper, x.squeeze(1)).view({embeds.size(0), config.ep_len, config.output_size});  // (B, E, Dgpt)
}

torch::Tensor MappingImpl::forward_upstream_batch(const torch::Tensor& embeds) {
  TORCH_CHECK(embeds.dim() == 2, "Mapping::forward_upstream_batch expects (N, Din)");
  auto x = transformer_encoder(embeds.unsqueeze(0)).squeeze(0);                    // (N, Din): one sequence
  return linear_forward(mapper, x).view({embeds.size(0), config.ep_len, config.output_size});      // (N, E, Dgpt)
}

}  // namespace clipcap
