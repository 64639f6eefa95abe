// A read-only bag of named tensors on disk: safetensors files and torch.save (.bin/.pt) archives
// look the same to the model loaders.
//
//   auto src = clipcap::open_weights("gpt2/model.safetensors");
//   if (src->contains("wte.weight")) auto w = src->load("wte.weight", torch::kFloat32);
//
// load() reads one tensor from disk into fresh memory (a file is never held in memory twice) and
// converts floating dtypes to the one asked for; problems throw clipcap::Error naming the file and
// the tensor.
#pragma once

#include <torch/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace clipcap {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual const std::string& path() const = 0;
  virtual std::vector<std::string> names() const = 0;  // in file order
  virtual bool contains(const std::string& name) const = 0;
  virtual std::vector<int64_t> shape(const std::string& name) const = 0;
  // dtype: the floating dtype wanted (F32/F16/BF16 are converted); std::nullopt keeps the stored one.
  virtual torch::Tensor load(const std::string& name,
                             std::optional<torch::ScalarType> dtype = std::nullopt) const = 0;
};

// Opens model.safetensors / pytorch_model.bin / model.pt by content (magic bytes), not by name.
std::unique_ptr<WeightSource> open_weights(const std::string& path);

// The weights file of an HF model directory: model.safetensors, else pytorch_model.bin.
std::string find_weights_file(const std::string& model_dir);

}  // namespace clipcap
