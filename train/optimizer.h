// The captioner's optimizer from the training config, and its learning rate.
//
//   auto params = clipcap::apply_freeze_policy(captioner, cfg.freeze);
//   auto optimizer = clipcap::make_optimizer(cfg, params);   // cfg.optimizer: adam | adamw
//   clipcap::set_lr(*optimizer, schedule.at(step));
#pragma once

#include <torch/optim/optimizer.h>

#include <memory>
#include <vector>

#include "train/train_config.h"

namespace clipcap {

// Adam or AdamW with the config's lr, betas, eps and weight decay.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& cfg, std::vector<torch::Tensor> params);
void set_lr(torch::optim::Optimizer& opt, double lr);  // every parameter group
double current_lr(torch::optim::Optimizer& opt);       // the first group's

}  // namespace clipcap
