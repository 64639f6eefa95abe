#include "model/kernels/activations.h"

#include <ATen/ops/gelu.h>
#include <ATen/ops/relu.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/silu.h>

#include <utility>

#include "common/error.h"

namespace clipcap {

torch::Tensor quick_gelu(const torch::Tensor& x) { return x * at::sigmoid(x * 1.702); }

torch::Tensor gelu(const torch::Tensor& x) { return at::gelu(x); }

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): libtorch's fused "tanh" GELU is this formula.
torch::Tensor gelu_new(const torch::Tensor& x) { return at::gelu(x, "tanh"); }

torch::Tensor relu(const torch::Tensor& x) { return at::relu(x); }

torch::Tensor silu(const torch::Tensor& x) { return at::silu(x); }

Activation activation_by_name(const std::string& name, const std::string& where) {
  static const std::pair<const char*, Activation> known[] = {
      {"quick_gelu", quick_gelu}, {"gelu", gelu},          {"gelu_new", gelu_new},
      {"gelu_pytorch_tanh", gelu_new}, {"gelu_fast", gelu_new}, {"relu", relu},
      {"silu", silu},             {"swish", silu},
  };
  std::string list;
  for (const auto& [n, fn] : known) {
    if (name == n) return fn;
    list += (list.empty() ? "" : ", ") + std::string(n);
  }
  throw Error(where + ": unknown activation '" + name + "' (known: " + list + ")");
}

}  // namespace clipcap
