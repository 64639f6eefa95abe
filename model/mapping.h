// The mapping network: one image embedding -> ep_len GPT-2 prefix embeddings.
//
//   clipcap::MappingConfig mc;  mc.input_size = 768; mc.output_size = 768;   // CLIP width, n_embd
//   clipcap::Mapping mapping(mc);                    // fresh: kaiming-normal linears, zero biases
//   torch::Tensor prefix = mapping->forward(embeds); // (B, Din) -> (B, ep_len, Dgpt)
//
// Upstream's `Mapping`, parameter for parameter: a torch.nn.TransformerEncoder of post-norm
// TransformerEncoderLayers (ReLU, LayerNorm eps 1e-5, no final norm) named like the torch
// state_dict (transformer_encoder.layers.N.self_attn.in_proj_weight, ...linear1, norm2, ...), then
// `mapper` = Linear(Din, ep_len * Dgpt). So upstream's "mp.*" keys load by prefix.
//
// forward() treats every image as its own length-1 sequence. Upstream fed its (N, D) batch as ONE
// length-N sequence, so images attended to each other (LEGACY.md, defect 5); that reading is
// kept only as forward_upstream_batch(), for reproducing upstream's training loss.
// Shapes: B batch, L sequence length, Din encoder width, Dgpt GPT-2 width, E ep_len.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace clipcap {

struct MappingConfig {
  int64_t input_size = 768;     // Din: CLIP pooler_output width (or projection_dim for image_embeds)
  int64_t output_size = 768;    // Dgpt: GPT-2 n_embd
  int64_t ep_len = 4;           // prefix length (number of GPT-2 embeddings per image)
  int64_t num_layers = 6;       // TransformerEncoder layers
  int64_t n_heads = 16;         // attention heads; must divide input_size
  int64_t forward_expansion = 4;  // feed-forward width = input_size * forward_expansion
  double dropout = 0.1;         // training only (attention weights, both residual branches, FFN)

  // config.json "mapping" section: ep_len, num_layers, n_heads, forward_expansion, dropout. The
  // widths are not stored there: they follow from the CLIP and GPT-2 configs.
  static MappingConfig from_json(const nlohmann::json& j, int64_t input_size, int64_t output_size,
                                 const std::string& where);
  nlohmann::json to_json() const;
  void validate(const std::string& where) const;  // Error when sizes are inconsistent
};

// torch.nn.MultiheadAttention's parameters (packed in_proj, out_proj), self-attention only.
struct MultiheadSelfAttentionImpl : torch::nn::Module {
  MultiheadSelfAttentionImpl(int64_t embed_dim, int64_t num_heads, double dropout);
  torch::Tensor forward(const torch::Tensor& x);  // (B, L, D) -> (B, L, D)

  int64_t embed_dim, num_heads;
  double dropout;
  torch::Tensor in_proj_weight, in_proj_bias;  // (3D, D), (3D): q, k, v in that order
  torch::nn::Linear out_proj{nullptr};
};
TORCH_MODULE(MultiheadSelfAttention);

// torch.nn.TransformerEncoderLayer(batch_first=True, norm_first=False, activation=relu).
struct TransformerEncoderLayerImpl : torch::nn::Module {
  TransformerEncoderLayerImpl(int64_t d_model, int64_t n_heads, int64_t dim_feedforward, double dropout);
  torch::Tensor forward(const torch::Tensor& x);  // (B, L, D) -> (B, L, D)

  double dropout;
  MultiheadSelfAttention self_attn{nullptr};
  torch::nn::Linear linear1{nullptr}, linear2{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
};
TORCH_MODULE(TransformerEncoderLayer);

struct TransformerEncoderImpl : torch::nn::Module {
  TransformerEncoderImpl(const MappingConfig& cfg);
  torch::Tensor forward(torch::Tensor x);  // (B, L, D) -> (B, L, D)
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(TransformerEncoder);

class MappingImpl : public torch::nn::Module {
 public:
  explicit MappingImpl(const MappingConfig& cfg);

  torch::Tensor forward(const torch::Tensor& embeds);  // (B, Din) -> (B, E, Dgpt), images independent
  // Upstream's training reading: the N embeddings form ONE length-N sequence. (N, Din) -> (N, E, Dgpt)
  torch::Tensor forward_upstream_batch(const torch::Tensor& embeds);

  // kaiming-normal (fan_in, relu) for every Linear, zero biases; in_proj xavier-uniform like torch.
  void reset_parameters();

  MappingConfig config;
  TransformerEncoder transformer_encoder{nullptr};
  torch::nn::Linear mapper{nullptr};
};
TORCH_MODULE(Mapping);

}  // namespace clipcap
