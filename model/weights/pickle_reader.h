// Restricted unpickler for the data.pkl of a torch.save()d state_dict.
//
//   std::vector<clipcap::PickledTensor> ts = clipcap::read_state_dict_pickle(zip.read(*pkl), path);
//   // ts[i].name, its storage key (the zip entry <dir>/data/<key>), dtype, offset, size, stride
//
// It knows only what such a pickle contains: protocol-2 opcodes for dicts, tuples, lists, strings,
// numbers and memo, the globals collections.OrderedDict, torch._utils._rebuild_tensor_v2 /
// _rebuild_parameter and torch.<Type>Storage, and persistent_load records for storages. Any other
// global or opcode throws clipcap::Error instead of being executed: a pickle is a program, and
// checkpoints come from strangers. Nothing is read from the storages here.
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>
#include <vector>

namespace clipcap {

struct PickledTensor {
  std::string name;
  c10::ScalarType dtype = c10::ScalarType::Float;  // of the storage
  std::string storage_key;                         // zip entry <dir>/data/<storage_key>
  int64_t storage_numel = 0;                       // elements in the storage
  int64_t storage_offset = 0;                      // in elements
  std::vector<int64_t> size, stride;
};

// The tensors of the pickled state_dict in pickle order. Also accepts a top-level dict that holds
// the state_dict under "state_dict" or "model" (common training checkpoints). `path` is used in
// messages only.
std::vector<PickledTensor> read_state_dict_pickle(const std::string& pickle, const std::string& path);

}  // namespace clipcap
