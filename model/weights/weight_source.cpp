#include "model/weights/weight_source.h"

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "model/weights/safetensors.h"
#include "model/weights/torch_checkpoint.h"

namespace clipcap {

std::unique_ptr<WeightSource> open_weights(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open weights file");
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  // torch.save writes a zip archive ("PK\3\4"); safetensors starts with a little-endian length.
  if (in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4)
    return open_torch_checkpoint(path);
  // torch.save before PyTorch 1.6 wrote a bare pickle stream (protocol marker 0x80).
  if (in.gcount() >= 2 && static_cast<unsigned char>(magic[0]) == 0x80 && magic[1] >= 2 && magic[1] <= 5)
    throw Error(path + ": old (pre-1.6) torch.save format; re-save it with a current PyTorch or convert it to safetensors");
  return std::make_unique<SafetensorsFile>(path);
}

std::string find_weights_file(const std::string& model_dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(model_dir)) throw Error(model_dir + ": not a model directory");
  for (const char* name : {"model.safetensors", "pytorch_model.bin"}) {
    fs::path p = fs::path(model_dir) / name;
    if (fs::exists(p)) return p.string();
  }
  throw Error(model_dir + ": no model.safetensors or pytorch_model.bin in this directory");
}

}  // namespace clipcap
