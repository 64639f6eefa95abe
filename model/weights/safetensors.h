// safetensors reader and writer (https://huggingface.co/docs/safetensors, format v0).
//
//   clipcap::SafetensorsFile f("model.safetensors");       // validates the whole header
//   torch::Tensor w = f.load("wte.weight", torch::kFloat32);
//   clipcap::save_safetensors("out.safetensors", {{"w", w}}, {{"format", "pt"}});
//
// The reader checks: header length within the file, valid JSON, every entry's dtype/shape/offsets,
// byte size == dtype size x numel, data_offsets contiguous from 0 to the end of the file. Tensors
// are read with pread into their own buffer: the data section is never mapped or copied whole.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/weights/weight_source.h"

namespace clipcap {

class SafetensorsFile : public WeightSource {
 public:
  explicit SafetensorsFile(std::string path);
  ~SafetensorsFile() override;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  struct Entry {
    std::string dtype;  // safetensors name: F32, BF16, I64, ...
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;  // offsets inside the data section
  };

  const std::string& path() const override { return path_; }
  std::vector<std::string> names() const override;
  bool contains(const std::string& name) const override;
  std::vector<int64_t> shape(const std::string& name) const override;
  torch::Tensor load(const std::string& name,
                     std::optional<torch::ScalarType> dtype = std::nullopt) const override;

  const Entry& entry(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t data_start_ = 0;
  std::vector<std::string> order_;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Writes atomically (temp file + rename). Tensors are stored in their own dtype, sorted by name.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Reads every tensor (small files: test fixtures, datasets' embeddings).
std::map<std::string, torch::Tensor> load_safetensors(const std::string& path,
                                                      std::optional<torch::ScalarType> dtype = std::nullopt);

}  // namespace clipcap
