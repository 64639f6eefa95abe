#include "train/optimizer.h"

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>

namespace clipcap {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& cfg, std::vector<torch::Tensor> params) {
  if (cfg.optimizer == "adamw") {
    torch::optim::AdamWOptions o(cfg.lr);
    o.betas({cfg.adam_beta1, cfg.adam_beta2}).eps(cfg.adam_eps).weight_decay(cfg.weight_decay);
    return std::make_unique<torch::optim::AdamW>(std::move(params), o);
  }
  torch::optim::AdamOptions o(cfg.lr);
  o.betas({cfg.adam_beta1, cfg.adam_beta2}).eps(cfg.adam_eps).weight_decay(cfg.weight_decay);
  return std::make_unique<torch::optim::Adam>(std::move(params), o);
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

double current_lr(torch::optim::Optimizer& opt) { return opt.param_groups().front().options().get_lr(); }

}  // namespace clipcap
