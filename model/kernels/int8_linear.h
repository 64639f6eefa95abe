// int8 weight-only linear layers: each output channel's weights are stored as int8 with one f32
// scale (symmetric, scale = max |w| / 127), activations stay f32 (bf16 inputs are widened), and the
// product accumulates in f32:
//
//   clipcap::Int8Weight q = clipcap::quantize_int8(fc->weight, clipcap::WeightLayout::out_in);
//   torch::Tensor y = clipcap::int8_linear(x, q, fc->bias, clipcap::gelu_new);   // ~= gelu_new(fc(x))
//
// Why: decoding one caption at a time streams every weight once per token, so its speed is the
// memory bandwidth divided by the weights' bytes (bench/README.md, "Captioning speed"); int8 halves
// bf16's bytes and quarters f32's. Weights are packed in panels of kInt8PanelWidth outputs, each
// panel's K x 64 bytes contiguous, so a product reads them front to back exactly once whatever the
// number of input rows. Accuracy (greedy captions, held-out metrics): bench/README.md, "int8".
#pragma once

#include <torch/nn/modules/linear.h>

#include <string>

#include "model/kernels/activations.h"
#include "model/kernels/inference_matmul.h"

namespace clipcap {

constexpr int64_t kInt8PanelWidth = 64;

struct Int8Weight {
  torch::Tensor panels;  // (ceil(N / 64), K, 64) int8: panels[p][k][j] = q(W[p * 64 + j][k]), zero past N
  torch::Tensor scales;  // (N) f32: W[n][k] ~= panels[..][k][..] * scales[n]

  int64_t in_features() const { return panels.size(1); }
  int64_t out_features() const { return scales.size(0); }
};

// weight: (N, K) for out_in, (K, N) for in_out; any float dtype.
Int8Weight quantize_int8(const torch::Tensor& weight, WeightLayout layout);
torch::Tensor dequantize_int8(const Int8Weight& w);  // (N, K) f32, what the product multiplies by

// x (..., K) f32 or bf16 -> act(x W^T + bias) (..., N) in x's dtype. bias: undefined or (N).
torch::Tensor int8_linear(const torch::Tensor& x, const Int8Weight& w, const torch::Tensor& bias,
                          Activation act = nullptr);

// A module's weight parameter `name` quantised in place: its data becomes the int8 panels (so the
// module keeps no float copy) and the module gets a buffer `name + "_scale"` with the scales.
// Inference only: the module can no longer be trained, converted (to()) or saved.
void quantize_parameter_int8(torch::nn::Module& owner, const std::string& name, WeightLayout layout);
bool is_quantized_int8(const torch::Tensor& weight);  // an int8 parameter (quantize_parameter_int8)
Int8Weight int8_parameter(const torch::nn::Module& owner, const std::string& name);

// A Linear module's own forward, or int8_linear when its weight was quantised.
torch::Tensor linear_forward(torch::nn::Linear& linear, const torch::Tensor& x);

// Whether int8_linear runs its AVX-512 kernel here (else a portable loop, much slower).
// use_portable_int8_kernel(true) forces the portable loop (tests compare the two).
bool int8_linear_uses_avx512();
void use_portable_int8_kernel(bool portable);

}  // namespace clipcap
