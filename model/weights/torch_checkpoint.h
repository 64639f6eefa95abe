// Reader for torch.save() zip archives holding a state_dict (pytorch_model.bin, upstream model.pt).
//
//   auto ckpt = clipcap::open_torch_checkpoint("pytorch_model.bin");
//   torch::Tensor w = ckpt->load("vision_model.embeddings.class_embedding", torch::kFloat32);
//
// libtorch 1.13's torch::pickle_load rejects OrderedDict state_dicts, so this is our own restricted
// unpickler: it knows only the opcodes and globals a state_dict uses (collections.OrderedDict,
// torch._utils._rebuild_tensor_v2, torch.*Storage, persistent_load records) and rejects anything
// else, because a pickle can run arbitrary code and users load checkpoints from strangers.
#pragma once

#include <memory>
#include <string>

#include "model/weights/weight_source.h"

namespace clipcap {

std::unique_ptr<WeightSource> open_torch_checkpoint(const std::string& path);

}  // namespace clipcap
