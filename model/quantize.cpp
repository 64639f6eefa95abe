#include "model/quantize.h"

#include <torch/nn/modules/linear.h>

#include "model/gpt2.h"
#include "model/kernels/int8_linear.h"
#include "model/mapping.h"

namespace clipcap {

int quantize_linears_int8(torch::nn::Module& root) {
  torch::NoGradGuard no_grad;
  int count = 0;
  auto quantize = [&](torch::nn::Module& owner, const std::string& name, WeightLayout layout) {
    quantize_parameter_int8(owner, name, layout);
    ++count;
  };
  for (const auto& m : root.modules(/*include_self=*/true)) {
    if (auto* linear = m->as<torch::nn::Linear>()) {
      quantize(*linear, "weight", WeightLayout::out_in);
    } else if (auto* conv = m->as<Conv1D>()) {
      quantize(*conv, "weight", WeightLayout::in_out);
    } else if (auto* attn = m->as<MultiheadSelfAttention>()) {
      quantize(*attn, "in_proj_weight", WeightLayout::out_in);
    } else if (auto* gpt2 = m->as<GPT2>()) {
      if (!gpt2->lm_head.defined()) gpt2->untie_lm_head(gpt2->wte->weight.clone());
      quantize(*gpt2, "lm_head", WeightLayout::out_in);
    }
  }
  return count;
}

}  // namespace clipcap
