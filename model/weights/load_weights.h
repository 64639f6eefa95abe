// The one checked loop that fills a model from a weights file, and its inverse for saving.
//
//   auto src = clipcap::open_weights(clipcap::find_weights_file(dir));
//   clipcap::load_weights(*gpt2, *src, {.prefixes = {"", "transformer."}, .config_path = dir + "/config.json"});
//   clipcap::save_safetensors(out + "/model.safetensors", clipcap::collect_weights(*gpt2));
//
// Every parameter and buffer of the module must be found in the file with the module's shape;
// tensors in the file the module does not have (position_ids, attn.bias, the other tower) are
// ignored. Errors name the weights file and the tensor, and for shapes the config.json that
// implied the module's shape.
#pragma once

#include <torch/nn/module.h>

#include <map>
#include <string>
#include <vector>

#include "model/weights/safetensors.h"
#include "model/weights/weight_source.h"

namespace clipcap {

struct WeightLoadOptions {
  // Tried in order for each parameter: {"", "transformer."} finds both GPT-2 layouts.
  std::vector<std::string> prefixes = {""};
  // Floating parameters and buffers take this dtype; integer buffers keep theirs.
  torch::ScalarType dtype = torch::kFloat32;
  // Module name -> name in the file (before the prefix), for parameters stored under another name.
  std::map<std::string, std::string> aliases;
  // The config.json the module's shapes come from; named in shape errors ("" = "the model").
  std::string config_path;
};

void load_weights(torch::nn::Module& m, const WeightSource& src, const WeightLoadOptions& opts = {});

// Parameters and buffers as (prefix + name, tensor), names mapped through aliases: what
// load_weights reads back.
NamedTensors collect_weights(const torch::nn::Module& m, const std::string& prefix = "",
                             const std::map<std::string, std::string>& aliases = {});

}  // namespace clipcap
