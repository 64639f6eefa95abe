#include "train/freeze_policy.h"

#include <torch/torch.h>

#include "common/error.h"
#include "model/captioner.h"

namespace clipcap {

std::vector<torch::Tensor> apply_freeze_policy(Captioner& captioner, const std::string& policy) {
  if (policy != "upstream" && policy != "mapping-only" && policy != "full")
    throw Error("freeze policy '" + policy + "': expected upstream, mapping-only or full");
  auto set = [](torch::nn::Module& m, bool on) {
    for (auto& p : m.parameters()) p.set_requires_grad(on);
  };
  set(*captioner.vision_model(), false);
  if (captioner.visual_projection()) set(*captioner.visual_projection(), false);
  set(*captioner.mapping(), true);

  GPT2& gpt2 = captioner.gpt2();
  set(*gpt2, policy == "full");
  if (policy == "upstream") {
    const int64_t last = gpt2->config.n_layer - 1;
    for (auto& item : gpt2->named_parameters()) {
      const std::string& name = item.key();
      const bool trainable = name.rfind("wte.", 0) == 0 || name.rfind("wpe.", 0) == 0 || name.rfind("ln_f.", 0) == 0 ||
                             name == "lm_head" || name.rfind("h.0.", 0) == 0 ||
                             name.rfind("h." + std::to_string(last) + ".", 0) == 0;
      item.value().set_requires_grad(trainable);
    }
  }
  std::vector<torch::Tensor> trainable;
  for (auto* m : {static_cast<torch::nn::Module*>(captioner.mapping().get()), static_cast<torch::nn::Module*>(gpt2.get())})
    for (auto& p : m->parameters())
      if (p.requires_grad()) trainable.push_back(p);
  return trainable;
}

}  // namespace clipcap
