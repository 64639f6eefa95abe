// load_weights / collect_weights on a small module: prefixes, aliases, dtype, ignored extras, and
// the two errors users meet (missing tensor, shape that disagrees with config.json).
#include <torch/torch.h>

#include "common/error.h"
#include "model/weights/load_weights.h"
#include "model/weights/safetensors.h"
#include "tests/test_support.h"

namespace {

struct TinyImpl : torch::nn::Module {
  TinyImpl() {
    proj = register_module("proj", torch::nn::Linear(3, 2));
    scale = register_parameter("scale", torch::ones({}));
    steps = register_buffer("steps", torch::zeros({2}, torch::kLong));
  }
  torch::nn::Linear proj{nullptr};
  torch::Tensor scale, steps;
};
TORCH_MODULE(Tiny);

// A weights file holding the given tensors.
std::unique_ptr<clipcap::WeightSource> file_with(const clipcap::NamedTensors& tensors, const std::string& tag) {
  std::string path = clipcap::test::temp_dir(tag) + "/model.safetensors";
  clipcap::save_safetensors(path, tensors);
  return clipcap::open_weights(path);
}

clipcap::NamedTensors tiny_tensors(const std::string& prefix) {
  return {{prefix + "proj.weight", torch::arange(6, torch::kFloat).view({2, 3})},
          {prefix + "proj.bias", torch::tensor({0.5f, -0.5f})},
          {prefix + "scale", torch::tensor(3.0f)},
          {prefix + "steps", torch::tensor(std::vector<int64_t>{7, 8})}};
}

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const clipcap::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(LoadWeights, FillsEveryParameterAndBuffer) {
  auto src = file_with(tiny_tensors(""), "lw-plain");
  Tiny m;
  torch::Tensor weight_handle = m->proj->weight;  // handles taken before loading see the values
  clipcap::load_weights(*m, *src);
  EXPECT_TENSOR_EQ(weight_handle, torch::arange(6, torch::kFloat).view({2, 3}));
  EXPECT_TENSOR_EQ(m->proj->bias, torch::tensor({0.5f, -0.5f}));
  EXPECT_EQ(m->scale.item<float>(), 3.0f);
  EXPECT_TENSOR_EQ(m->steps, torch::tensor(std::vector<int64_t>{7, 8}));
  EXPECT_TRUE(m->proj->weight.requires_grad()) << "loaded parameters must stay trainable";
}

TEST(LoadWeights, PrefixesAreTriedInOrderAndExtrasIgnored) {
  auto tensors = tiny_tensors("transformer.");
  tensors.emplace_back("transformer.h.0.attn.bias", torch::ones({4, 4}));  // not in the module
  tensors.emplace_back("position_ids", torch::arange(4));
  auto src = file_with(tensors, "lw-prefix");
  Tiny m;
  clipcap::WeightLoadOptions opts;
  opts.prefixes = {"", "transformer."};
  clipcap::load_weights(*m, *src, opts);
  EXPECT_EQ(m->scale.item<float>(), 3.0f);
}

TEST(LoadWeights, AliasesAndDtype) {
  auto tensors = tiny_tensors("");
  tensors[2].first = "logit_scale";  // stored under another name
  auto src = file_with(tensors, "lw-alias");
  Tiny m;
  clipcap::WeightLoadOptions opts;
  opts.aliases = {{"scale", "logit_scale"}};
  opts.dtype = torch::kBFloat16;
  clipcap::load_weights(*m, *src, opts);
  EXPECT_EQ(m->scale.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(m->proj->weight.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(m->steps.scalar_type(), torch::kLong) << "integer buffers keep their dtype";
  EXPECT_EQ(m->scale.item<float>(), 3.0f);
}

TEST(LoadWeights, MissingTensorNamesFileAndTensor) {
  auto tensors = tiny_tensors("");
  tensors.erase(tensors.begin() + 1);  // proj.bias
  auto src = file_with(tensors, "lw-missing");
  Tiny m;
  std::string msg = error_of([&] { clipcap::load_weights(*m, *src); });
  EXPECT_EQ(msg, src->path() + ": missing tensor 'proj.bias'");
}

TEST(LoadWeights, ShapeErrorNamesConfig) {
  auto tensors = tiny_tensors("");
  tensors[0].second = torch::zeros({2, 4});
  auto src = file_with(tensors, "lw-shape");
  Tiny m;
  clipcap::WeightLoadOptions opts;
  opts.config_path = "some/config.json";
  std::string msg = error_of([&] { clipcap::load_weights(*m, *src, opts); });
  EXPECT_EQ(msg, src->path() + ": tensor 'proj.weight' has shape [2, 4] but some/config.json implies [2, 3]");
}

TEST(LoadWeights, IntegerTensorForAFloatParameter) {
  auto tensors = tiny_tensors("");
  tensors[0].second = torch::zeros({2, 3}, torch::kLong);
  auto src = file_with(tensors, "lw-dtype");
  Tiny m;
  std::string msg = error_of([&] { clipcap::load_weights(*m, *src); });
  EXPECT_NE(msg.find(src->path()), std::string::npos) << msg;
  EXPECT_NE(msg.find("proj.weight"), std::string::npos) << msg;
}

TEST(LoadWeights, CollectedWeightsLoadBack) {
  auto src = file_with(tiny_tensors("model."), "lw-src");
  Tiny a;
  clipcap::WeightLoadOptions opts;
  opts.prefixes = {"model."};
  clipcap::load_weights(*a, *src, opts);

  auto collected = clipcap::collect_weights(*a, "copy.", {{"scale", "logit_scale"}});
  std::vector<std::string> names;
  for (const auto& [name, t] : collected) names.push_back(name);
  EXPECT_NE(std::find(names.begin(), names.end(), "copy.logit_scale"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "copy.steps"), names.end());

  auto saved = file_with(collected, "lw-saved");
  Tiny b;
  opts.prefixes = {"copy."};
  opts.aliases = {{"scale", "logit_scale"}};
  clipcap::load_weights(*b, *saved, opts);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa) EXPECT_TENSOR_EQ(pb[p.key()], p.value()) << p.key();
  EXPECT_TENSOR_EQ(b->steps, a->steps);
}
