// Which weights training updates.
//
//   std::vector<torch::Tensor> params = clipcap::apply_freeze_policy(captioner, "upstream");
//
//   upstream      the mapping + GPT-2's wte (hence the tied lm_head), wpe, first and last block
//                 and ln_f, as upstream trained (LEGACY.md, "The upstream model")
//   mapping-only  the mapping; GPT-2 frozen
//   full          the mapping and all of GPT-2
// The CLIP vision tower is always frozen: training reads precomputed embeddings. Returns the
// trainable parameters (requires_grad true, in a fixed order); every other one is frozen.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

namespace clipcap {

class Captioner;

std::vector<torch::Tensor> apply_freeze_policy(Captioner& captioner, const std::string& policy);

}  // namespace clipcap
