// libFuzzer target: the safetensors reader (model/weights/safetensors.h) on any file: the header's
// JSON, dtypes, shapes and offsets, then every tensor loaded as stored and converted to f32.
#include <torch/torch.h>

#include "model/weights/safetensors.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static clipcap::fuzz::MemFile file("model.safetensors");
  const std::string& path = file.set(data, size);
  clipcap::fuzz::refused_or_ok([&] {
    clipcap::SafetensorsFile f(path);
    for (const std::string& name : f.names()) {
      (void)f.shape(name);
      (void)f.load(name).sum();
      clipcap::fuzz::refused_or_ok([&] { (void)f.load(name, torch::kFloat32); });
    }
  });
  return 0;
}
