#include "model/weights/load_weights.h"

#include <torch/csrc/autograd/grad_mode.h>

#include "common/error.h"

namespace clipcap {

namespace {

// The name in the file for a module name, under each prefix, in the order they are tried.
std::vector<std::string> candidate_names(const std::string& name, const WeightLoadOptions& opts) {
  auto alias = opts.aliases.find(name);
  const std::string& stored = alias == opts.aliases.end() ? name : alias->second;
  std::vector<std::string> out;
  for (const auto& prefix : opts.prefixes) out.push_back(prefix + stored);
  if (out.empty()) out.push_back(stored);
  return out;
}

void load_one(const std::string& name, torch::Tensor& target, const WeightSource& src,
              const WeightLoadOptions& opts) {
  std::vector<std::string> candidates = candidate_names(name, opts);
  const std::string* found = nullptr;
  for (const auto& c : candidates)
    if (src.contains(c)) {
      found = &c;
      break;
    }
  if (!found) throw Error(src.path() + ": missing tensor '" + candidates.front() + "'");

  // Check the shape from the header before reading: a wrong file may be large.
  std::vector<int64_t> stored = src.shape(*found);
  std::vector<int64_t> wanted = target.sizes().vec();
  if (stored != wanted)
    throw Error(src.path() + ": tensor '" + *found + "' has shape " + shape_string(stored) + " but " +
                (opts.config_path.empty() ? std::string("the model") : opts.config_path) + " implies " +
                shape_string(wanted));

  // Floating tensors take the dtype asked for; others (integer buffers) keep the module's.
  torch::ScalarType dtype = target.is_floating_point() ? opts.dtype : target.scalar_type();
  torch::Tensor value = src.load(*found, dtype);
  if (value.scalar_type() != dtype)
    throw Error(src.path() + ": tensor '" + *found + "' has dtype " + c10::toString(value.scalar_type()) +
                ", the model needs " + c10::toString(dtype));
  // set_data swaps the storage in place: no second copy of the weights, and every handle to the
  // parameter (module members, optimizers built later) sees the loaded values.
  target.set_data(value.to(target.device()));
}

}  // namespace

void load_weights(torch::nn::Module& m, const WeightSource& src, const WeightLoadOptions& opts) {
  torch::NoGradGuard no_grad;
  for (auto& item : m.named_parameters(/*recurse=*/true)) load_one(item.key(), item.value(), src, opts);
  for (auto& item : m.named_buffers(/*recurse=*/true)) load_one(item.key(), item.value(), src, opts);
}

NamedTensors collect_weights(const torch::nn::Module& m, const std::string& prefix,
                             const std::map<std::string, std::string>& aliases) {
  NamedTensors out;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    auto alias = aliases.find(name);
    out.emplace_back(prefix + (alias == aliases.end() ? name : alias->second), t.detach());
  };
  for (const auto& item : m.named_parameters(/*recurse=*/true)) add(item.key(), item.value());
  for (const auto& item : m.named_buffers(/*recurse=*/true)) add(item.key(), item.value());
  return out;
}

}  // namespace clipcap
