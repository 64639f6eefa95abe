// The MLP activations HF configs name (CLIP hidden_act, GPT-2 activation_function).
//
//   clipcap::Activation act = clipcap::activation_by_name(cfg.hidden_act, "config.json: hidden_act");
//   torch::Tensor y = act(x);
//
// Unknown names throw clipcap::Error("<where>: unknown activation 'x' (known: ...)").
#pragma once

#include <torch/types.h>

#include <string>

namespace clipcap {

using Activation = torch::Tensor (*)(const torch::Tensor&);

torch::Tensor quick_gelu(const torch::Tensor& x);  // x * sigmoid(1.702 x)        (CLIP)
torch::Tensor gelu(const torch::Tensor& x);        // exact erf GELU
torch::Tensor gelu_new(const torch::Tensor& x);    // tanh approximation           (GPT-2)
torch::Tensor relu(const torch::Tensor& x);
torch::Tensor silu(const torch::Tensor& x);        // x * sigmoid(x)

// Names as HF's ACT2FN spells them: quick_gelu, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast,
// relu, silu/swish. where: "<config.json path>: <field>" for the error message.
Activation activation_by_name(const std::string& name, const std::string& where);

}  // namespace clipcap
