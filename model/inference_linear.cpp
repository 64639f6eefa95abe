#include "model/inference_linear.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <cstdlib>

namespace clipcap {

torch::Tensor inference_linear(torch::nn::Linear& linear, const torch::Tensor& x) {
  static const bool blas_only = std::getenv("CLIPCAP_BLAS_LINEAR") != nullptr;
  const torch::Tensor& w = linear->weight;
  const bool applies = !at::GradMode::is_enabled() && at::globalContext().userEnabledMkldnn() &&
                       x.device().is_cpu() && x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat &&
                       x.dim() >= 2 && x.numel() / x.size(-1) >= 64;
  if (!applies || blas_only) return linear->forward(x);
  auto out_shape = x.sizes().vec();
  out_shape.back() = w.size(0);
  const torch::Tensor rows = x.reshape({-1, x.size(-1)}).contiguous();
  const torch::Tensor b = linear->bias.defined() ? linear->bias : torch::Tensor();
  return at::mkldnn_linear(rows.to_mkldnn(), w.contiguous(), b).to_dense().view(out_shape);
}

}  // namespace clipcap
