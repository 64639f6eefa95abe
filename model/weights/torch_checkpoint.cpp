#include "model/weights/torch_checkpoint.h"

#include <torch/types.h>

#include <map>

#include "common/error.h"
#include "model/weights/pickle_reader.h"
#include "model/weights/zip_archive.h"

namespace clipcap {

namespace {

bool is_float(torch::ScalarType t) {
  return t == torch::kFloat32 || t == torch::kFloat16 || t == torch::kBFloat16 || t == torch::kFloat64;
}

class TorchCheckpoint : public WeightSource {
 public:
  explicit TorchCheckpoint(const std::string& path) : zip_(path) {
    const ZipArchive::Entry* pkl = nullptr;
    for (const auto& e : zip_.entries()) {
      const size_t slash = e.name.find('/');
      if (slash == std::string::npos || e.name.compare(slash, std::string::npos, "/data.pkl") != 0) continue;
      if (pkl) throw Error(path + ": zip archive holds several data.pkl (" + pkl->name + ", " + e.name + ")");
      pkl = &e;
      dir_ = e.name.substr(0, slash);
    }
    if (!pkl) throw Error(path + ": no <dir>/data.pkl in this zip archive (not a torch.save checkpoint)");
    if (const auto* order = zip_.find(dir_ + "/byteorder"); order && zip_.read(*order) != "little")
      throw Error(path + ": checkpoint was saved on a big-endian machine (byteorder '" + zip_.read(*order) +
                  "'), which is not supported");

    tensors_ = read_state_dict_pickle(zip_.read(*pkl), path);
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const PickledTensor& t = tensors_[i];
      const std::string where = path + ": tensor '" + t.name + "'";
      if (!index_.emplace(t.name, i).second) throw Error(where + ": appears twice");
      const ZipArchive::Entry* data = zip_.find(dir_ + "/data/" + t.storage_key);
      if (!data) throw Error(where + ": its storage " + dir_ + "/data/" + t.storage_key + " is missing from the archive");
      const uint64_t elem = c10::elementSize(t.dtype);
      if (data->size != static_cast<uint64_t>(t.storage_numel) * elem)
        throw Error(where + ": storage " + t.storage_key + " has " + std::to_string(data->size) + " bytes, " +
                    std::to_string(t.storage_numel) + " " + c10::toString(t.dtype) + " elements need " +
                    std::to_string(t.storage_numel * elem));
      // The view must stay inside its storage: offset + sum((size-1) * stride) < numel.
      uint64_t last = static_cast<uint64_t>(t.storage_offset);
      bool empty = false;
      uint64_t numel = 1;
      for (size_t d = 0; d < t.size.size(); ++d) {
        numel = t.size[d] == 0 || numel > (uint64_t(1) << 62) / t.size[d] ? 0 : numel * t.size[d];
        if (t.size[d] == 0) empty = true;
        else if (t.stride[d] > 0 && static_cast<uint64_t>(t.size[d] - 1) > (uint64_t(1) << 62) / t.stride[d])
          throw Error(where + ": absurd size/stride");
        else last += static_cast<uint64_t>(t.size[d] - 1) * static_cast<uint64_t>(t.stride[d]);
        if (last > (uint64_t(1) << 62)) throw Error(where + ": absurd size/stride");
      }
      // More elements than the storage means an expanded (stride-0) view: never in a state_dict, and
      // a hostile file could ask for terabytes that way.
      if (!empty && (numel == 0 || numel > static_cast<uint64_t>(t.storage_numel)))
        throw Error(where + ": size " + shape_string(t.size) + " has more elements than its storage of " +
                    std::to_string(t.storage_numel));
      if (!empty && last >= static_cast<uint64_t>(t.storage_numel))
        throw Error(where + ": size " + shape_string(t.size) + ", stride " + shape_string(t.stride) + " at offset " +
                    std::to_string(t.storage_offset) + " reaches past its storage of " +
                    std::to_string(t.storage_numel) + " elements");
    }
  }

  const std::string& path() const override { return zip_.path(); }

  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& t : tensors_) out.push_back(t.name);
    return out;
  }

  bool contains(const std::string& name) const override { return index_.count(name) > 0; }

  std::vector<int64_t> shape(const std::string& name) const override { return record(name).size; }

  torch::Tensor load(const std::string& name, std::optional<torch::ScalarType> dtype) const override {
    const PickledTensor& t = record(name);
    if (dtype && *dtype != t.dtype && (!is_float(t.dtype) || !is_float(*dtype)))
      throw Error(path() + ": tensor '" + name + "': unsupported dtype " + c10::toString(t.dtype) + " where " +
                  c10::toString(*dtype) + " weights are expected");
    // Read only the span of the storage this view touches; tied tensors each read their own copy.
    int64_t numel = 1, span = 1;
    for (size_t d = 0; d < t.size.size(); ++d) {
      numel *= t.size[d];
      if (t.size[d] > 0) span += (t.size[d] - 1) * t.stride[d];
    }
    if (numel == 0) return torch::empty(t.size, torch::TensorOptions().dtype(dtype.value_or(t.dtype)));
    torch::Tensor flat = torch::empty({span}, torch::TensorOptions().dtype(t.dtype));
    const uint64_t elem = c10::elementSize(t.dtype);
    zip_.read(*zip_.find(dir_ + "/data/" + t.storage_key), static_cast<uint64_t>(t.storage_offset) * elem,
              flat.data_ptr(), static_cast<uint64_t>(span) * elem);
    torch::Tensor out = flat.as_strided(t.size, t.stride, 0).contiguous();
    if (dtype && *dtype != t.dtype) out = out.to(*dtype);
    return out;
  }

 private:
  const PickledTensor& record(const std::string& name) const {
    auto it = index_.find(name);
    if (it == index_.end()) throw Error(path() + ": missing tensor '" + name + "'");
    return tensors_[it->second];
  }

  ZipArchive zip_;
  std::string dir_;  // the archive's top-level directory: "pytorch_model", "archive", ...
  std::vector<PickledTensor> tensors_;
  std::map<std::string, size_t> index_;
};

}  // namespace

std::unique_ptr<WeightSource> open_torch_checkpoint(const std::string& path) {
  return std::make_unique<TorchCheckpoint>(path);
}

}  // namespace clipcap
