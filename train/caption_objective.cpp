#include "train/caption_objective.h"

#include <torch/torch.h>

#include "common/error.h"
#include "model/captioner.h"
#include "train/caption_batches.h"

namespace clipcap {

namespace {

torch::Tensor caption_logits(Captioner& captioner, const CaptionBatch& batch) {
  GPT2& gpt2 = captioner.gpt2();
  const int64_t T = batch.tokens.size(1);
  torch::Tensor prefix = captioner.prefix(batch.embeds);  // (B, E, D)
  const int64_t E = prefix.size(1);
  if (E + T - 1 > gpt2->config.n_positions)
    throw Error("training: prefix (" + std::to_string(E) + ") + caption (" + std::to_string(T) +
                " tokens) exceed GPT-2's n_positions " + std::to_string(gpt2->config.n_positions) + "; lower max_len");
  torch::Tensor tokens = batch.tokens.to(captioner.device());
  torch::Tensor inputs =
      T > 1 ? torch::cat({prefix, gpt2->embed(tokens.slice(1, 0, T - 1)).to(prefix.scalar_type())}, 1)  // (B, E+T-1, D)
            : prefix;
  torch::Tensor hidden = gpt2->forward(inputs).slice(1, E - 1);  // (B, T, D): the positions that predict tokens
  return gpt2->logits(hidden);                                   // (B, T, V)
}

}  // namespace

torch::Tensor caption_token_losses(Captioner& captioner, const CaptionBatch& batch) {
  torch::Tensor logits = caption_logits(captioner, batch);  // (B, T, V)
  const int64_t B = logits.size(0), T = logits.size(1), V = logits.size(2);
  torch::Tensor targets = batch.targets.to(logits.device());
  torch::Tensor losses = torch::nn::functional::cross_entropy(
      logits.reshape({B * T, V}).to(torch::kFloat32), targets.reshape({B * T}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kNone));
  return losses.view({B, T});  // (B, T)
}

torch::Tensor caption_loss(Captioner& captioner, const CaptionBatch& batch) {
  torch::Tensor logits = caption_logits(captioner, batch);  // (B, T, V)
  const int64_t V = logits.size(2);
  return torch::nn::functional::cross_entropy(
      logits.reshape({-1, V}).to(torch::kFloat32), batch.targets.to(logits.device()).reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
}

}  // namespace clipcap
