#include "model/search_step.h"

#include <torch/torch.h>

namespace clipcap {

namespace {
torch::Tensor last_logits(GPT2Impl& gpt2, const torch::Tensor& hidden) {
  return gpt2.logits_f32(hidden.select(1, -1));  // (N, V)
}
}  // namespace

torch::Tensor index_tensor(const std::vector<int64_t>& v, const torch::Device& device) {
  return torch::tensor(v, torch::kInt64).to(device);
}

torch::Tensor prefix_logits(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds, KVCache& cache) {
  return last_logits(gpt2, gpt2.forward(prefix_embeds, {}, &cache));
}

torch::Tensor step_logits(GPT2Impl& gpt2, const std::vector<int64_t>& next_tokens, KVCache& cache,
                          const torch::Device& device) {
  auto ids = index_tensor(next_tokens, device).unsqueeze(1);  // (N, 1)
  return last_logits(gpt2, gpt2.forward(gpt2.embed(ids), {}, &cache));
}

}  // namespace clipcap
