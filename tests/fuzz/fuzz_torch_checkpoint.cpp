// libFuzzer target: torch.save() checkpoints (model/weights/torch_checkpoint.h): the zip archive,
// the restricted unpickler on its data.pkl, and every tensor's storage, offset and strides.
#include <torch/torch.h>

#include "model/weights/torch_checkpoint.h"
#include "model/weights/weight_source.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static clipcap::fuzz::MemFile file("pytorch_model.bin");
  const std::string& path = file.set(data, size);
  clipcap::fuzz::refused_or_ok([&] {
    auto src = clipcap::open_torch_checkpoint(path);
    for (const std::string& name : src->names()) {
      (void)src->shape(name);
      clipcap::fuzz::refused_or_ok([&] { (void)src->load(name).sum(); });
    }
  });
  return 0;
}
