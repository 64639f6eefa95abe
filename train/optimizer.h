// The captioner's optimizer from the training config, and its learning rate.
//
//   auto params = clipcap::apply_freeze_policy(captioner, cfg.freeze);
//   auto optimizer = clipcap::make_optimizer(cfg, params);   // cfg.optimizer: adam | adamw
//   clipcap::set_lr(*optimizer, schedule.at(step));
//   ... loss.backward(); optimizer->step(); clipcap::clear_gradients(*optimizer);
#pragma once

#include <torch/optim/adam.h>
#include <torch/optim/optimizer.h>

#include <memory>
#include <vector>

#include "train/train_config.h"

namespace clipcap {

// torch::optim::Adam with the update of each float32 CPU parameter done in one pass over its
// weight, gradient and two moments (libtorch runs eight tensor ops, each a pass over memory; for
// GPT-2's 38.6 M-row wte that was most of the optimizer's time). The same formula in the same
// order of float operations (the results differ from Adam's only where libtorch's vector kernels
// fuse a multiply-add), the same state (AdamParamState), so save()/load() and checkpoints are
// Adam's. Other parameters (non-float32, non-contiguous, sparse gradients, amsgrad) take Adam's
// tensor-op path.
class FusedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

// Adam (FusedAdam) or AdamW with the config's lr, betas, eps and weight decay.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& cfg, std::vector<torch::Tensor> params);
void set_lr(torch::optim::Optimizer& opt, double lr);  // every parameter group
double current_lr(torch::optim::Optimizer& opt);       // the first group's

// Python's zero_grad(set_to_none=True): the next backward writes each gradient instead of adding
// it to zeros (libtorch 1.13's zero_grad() fills them with zeros, a pass over every trainable
// weight, then every backward adds). Adam skips parameters without a gradient; every trainable
// parameter of the captioner gets one from each backward.
void clear_gradients(torch::optim::Optimizer& opt);

}  // namespace clipcap
