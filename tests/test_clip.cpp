// CLIP against expected/clip.safetensors: vision tower, text tower (both pooling rules), projections,
// logits; both weight formats; vision-only loading; bad directories. Every size comes from the
// fixture files, so held-out fixtures of other sizes run through the same tests.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/json_util.h"
#include "model/clip.h"
#include "model/kernels/inference_matmul.h"
#include "model/weights/safetensors.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using clipcap::test::expected;
using clipcap::test::fixture;

namespace {

const torch::Tensor& E(const std::string& name) { return clipcap::test::expected_tensor("clip.safetensors", name); }
bool has(const std::string& name) { return expected("clip.safetensors").count(name) > 0; }

constexpr double kTol = 1e-4;

clipcap::CLIPModel& tiny_clip() {
  static clipcap::CLIPModel model = clipcap::load_clip(fixture("tiny-clip"));
  return model;
}

// A copy of tiny-clip holding config.json and only the named weights file (as that name).
std::string clip_dir_with(const std::string& weights_file, const std::string& tag) {
  std::string dir = clipcap::test::temp_dir(tag);
  fs::copy_file(fixture("tiny-clip/config.json"), dir + "/config.json");
  fs::copy_file(fixture("tiny-clip/" + weights_file), dir + "/" + weights_file);
  return dir;
}

using ::clipcap::test::expect_error;

}  // namespace

TEST(CLIPConfig, EverySizeComesFromConfigJson) {
  auto j = clipcap::read_json(fixture("tiny-clip/config.json"));
  auto cfg = clipcap::CLIPConfig::from_json(j, "config.json");
  const auto& v = j["vision_config"];
  const auto& t = j["text_config"];
  EXPECT_EQ(cfg.vision.hidden_size, v["hidden_size"].get<int64_t>());
  EXPECT_EQ(cfg.vision.num_hidden_layers, v["num_hidden_layers"].get<int64_t>());
  EXPECT_EQ(cfg.vision.image_size, v["image_size"].get<int64_t>());
  EXPECT_EQ(cfg.vision.patch_size, v["patch_size"].get<int64_t>());
  EXPECT_EQ(cfg.text.hidden_size, t["hidden_size"].get<int64_t>());
  EXPECT_EQ(cfg.text.intermediate_size, t["intermediate_size"].get<int64_t>());
  EXPECT_EQ(cfg.text.vocab_size, t["vocab_size"].get<int64_t>());
  EXPECT_EQ(cfg.text.eos_token_id, t["eos_token_id"].get<int64_t>());
  EXPECT_EQ(cfg.projection_dim, j["projection_dim"].get<int64_t>());
  EXPECT_FALSE(cfg.vision_only);

  // to_json round-trips through from_json.
  auto again = clipcap::CLIPConfig::from_json(cfg.to_json(), "again");
  EXPECT_EQ(again.to_json(), cfg.to_json());
}

TEST(CLIPGolden, VisionTower) {
  torch::NoGradGuard no_grad;
  auto& clip = tiny_clip();
  const torch::Tensor& pixels = E("vision.pixel_values");
  EXPECT_TENSOR_NEAR(clip->vision_model->embeddings->forward(pixels), E("vision.embeddings"), kTol);

  auto out = clip->vision_model->forward(pixels, /*want_hidden_states=*/true);
  const int64_t layers = clip->config.vision.num_hidden_layers;
  ASSERT_EQ(static_cast<int64_t>(out.hidden_states.size()), layers + 1);
  EXPECT_TENSOR_NEAR(out.hidden_states[0], E("vision.pre_layrnorm"), kTol);
  for (int64_t l = 0; l < layers; ++l)
    EXPECT_TENSOR_NEAR(out.hidden_states[l + 1], E("vision.layer" + std::to_string(l) + ".output"), kTol) << "layer " << l;
  EXPECT_TENSOR_NEAR(out.last_hidden_state, E("vision.last_hidden_state"), kTol);
  EXPECT_TENSOR_NEAR(out.pooler_output, E("vision.pooler_output"), kTol);
  EXPECT_TENSOR_NEAR(clip->image_embeds(out.pooler_output), E("vision.image_embeds"), kTol);

  // Without the hidden-states request nothing is kept, and the result is the same.
  auto plain = clip->vision_model->forward(pixels);
  EXPECT_TRUE(plain.hidden_states.empty());
  EXPECT_TENSOR_EQ(plain.pooler_output, out.pooler_output);
}

// pooled() skips the patch positions' last-layer outputs (what captioning and datasets use):
// the reference's pooler_output and image_embeds all the same, and with autograd on too.
TEST(CLIPGolden, PooledIsThePoolerOutputWithLessWork) {
  auto& clip = tiny_clip();
  const torch::Tensor& pixels = E("vision.pixel_values");
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor pooled = clip->vision_model->pooled(pixels);
    EXPECT_TENSOR_NEAR(pooled, E("vision.pooler_output"), kTol);
    EXPECT_TENSOR_NEAR(clip->image_embeds(pooled), E("vision.image_embeds"), kTol);
    EXPECT_TENSOR_NEAR(pooled, clip->vision_model->forward(pixels).pooler_output, 1e-5);
  }
  const torch::Tensor with_grad = clip->vision_model->pooled(pixels);
  EXPECT_TRUE(with_grad.requires_grad());
  EXPECT_TENSOR_NEAR(with_grad.detach(), E("vision.pooler_output"), kTol);
}

TEST(CLIPGolden, VisionRowsAreIndependentOfTheBatch) {
  torch::NoGradGuard no_grad;
  const torch::Tensor& pixels = E("vision.pixel_values");
  auto one = tiny_clip()->vision_model->forward(pixels.slice(0, 1, 2));
  EXPECT_TENSOR_NEAR(one.pooler_output, E("vision.pooler_output").slice(0, 1, 2), kTol);
}

// A batch tall enough for oneDNN's blocked matmul kernels (model/kernels/inference_matmul.h; the golden
// batch itself is few rows) still gives the reference's activations, image by image.
TEST(CLIPGolden, VisionThroughOneDnnLinearsMatchesTheReference) {
  torch::NoGradGuard no_grad;
  const torch::Tensor& pixels = E("vision.pixel_values");
  const int64_t copies = 8;
  const torch::Tensor many = pixels.repeat({copies, 1, 1, 1});
  const int64_t tokens = 1 + (32 / 8) * (32 / 8);
  ASSERT_GE(many.size(0) * tokens, 128);
  auto out = tiny_clip()->vision_model->forward(many);
  const torch::Tensor want = E("vision.pooler_output");
  for (int64_t c = 0; c < copies; ++c)
    EXPECT_TENSOR_NEAR(out.pooler_output.slice(0, c * pixels.size(0), (c + 1) * pixels.size(0)), want, kTol) << c;
}

TEST(CLIPGolden, FrozenVisionTowerGivesTheReferenceActivations) {
  torch::NoGradGuard no_grad;
  clipcap::CLIPModel clip = clipcap::load_clip(fixture("tiny-clip"));  // not the shared one
  clipcap::freeze_weights_for_inference(*clip);
  const torch::Tensor& pixels = E("vision.pixel_values");
  for (int run = 0; run < 2; ++run)
    EXPECT_TENSOR_NEAR(clip->vision_model->forward(pixels).pooler_output, E("vision.pooler_output"), kTol) << "run " << run;
}

TEST(CLIPGolden, TextSingleSequences) {
  torch::NoGradGuard no_grad;
  auto& clip = tiny_clip();
  int checked = 0;
  for (int i = 0; has("text.seq" + std::to_string(i) + ".input_ids"); ++i, ++checked) {
    const std::string p = "text.seq" + std::to_string(i) + ".";
    auto out = clip->text_model->forward(E(p + "input_ids"));
    EXPECT_TENSOR_NEAR(out.last_hidden_state, E(p + "last_hidden_state"), kTol) << p;
    EXPECT_TENSOR_NEAR(out.pooler_output, E(p + "pooler_output"), kTol) << p;
    EXPECT_TENSOR_NEAR(clip->text_embeds(out.pooler_output), E(p + "text_embeds"), kTol) << p;
  }
  EXPECT_GT(checked, 0);
}

TEST(CLIPGolden, TextBatchWithPadding) {
  torch::NoGradGuard no_grad;
  auto& clip = tiny_clip();
  const torch::Tensor& ids = E("text.batch.input_ids");
  const torch::Tensor& mask = E("text.batch.attention_mask");
  EXPECT_TENSOR_NEAR(clip->text_model->embeddings->forward(ids), E("text.batch.embeddings"), kTol);
  auto out = clip->text_model->forward(ids, mask);
  EXPECT_TENSOR_NEAR(out.last_hidden_state, E("text.batch.last_hidden_state"), kTol);
  EXPECT_TENSOR_EQ(clip->text_model->pooled_index(ids).to(torch::kLong), E("text.batch.pooled_index"));
  EXPECT_TENSOR_NEAR(out.pooler_output, E("text.batch.pooler_output"), kTol);
  EXPECT_TENSOR_NEAR(clip->text_embeds(out.pooler_output), E("text.batch.text_embeds"), kTol);
}

TEST(CLIPGolden, TextOtherPoolingRule) {
  // Load a private copy: the test switches the pooling rule by changing eos_token_id.
  torch::NoGradGuard no_grad;
  auto clip = clipcap::load_clip(fixture("tiny-clip"));
  auto& text = clip->text_model;
  const torch::Tensor& ids = E("text.batch.input_ids");
  const torch::Tensor& want_index = E("text.batch.other_rule_pooled_index");
  auto out = text->forward(ids, E("text.batch.attention_mask"));
  if (text->config.eos_token_id != 2) {
    text->config.eos_token_id = 2;  // old openai configs: argmax(input_ids)
    EXPECT_TENSOR_EQ(text->pooled_index(ids).to(torch::kLong), want_index);
    out = text->forward(ids, E("text.batch.attention_mask"));
    EXPECT_TENSOR_NEAR(out.pooler_output, E("text.batch.other_rule_pooler_output"), kTol);
    return;
  }
  // This config takes argmax(input_ids); the other rule is "first position of the eos id", with
  // the configured id (2) or the real end token closing every sequence: either may be meant.
  bool matched = false;
  for (int64_t eos : {int64_t{2}, E("text.seq0.input_ids").index({0, -1}).item<int64_t>()}) {
    torch::Tensor index = (ids == eos).to(torch::kInt).argmax(-1).to(torch::kLong);
    if (!torch::equal(index, want_index)) continue;
    matched = true;
    torch::Tensor rows = torch::arange(ids.size(0));
    EXPECT_TENSOR_NEAR(out.last_hidden_state.index({rows, index}), E("text.batch.other_rule_pooler_output"), kTol);
  }
  EXPECT_TRUE(matched) << "other_rule_pooled_index matches neither eos id";
}

TEST(CLIPGolden, ArgmaxRulePicksTheFirstMaximum) {
  auto clip = clipcap::load_clip(fixture("tiny-clip"));
  clip->text_model->config.eos_token_id = 2;
  auto ids = torch::tensor(std::vector<int64_t>{5, 9, 3, 9, 9}).view({1, 5});
  EXPECT_EQ(clip->text_model->pooled_index(ids).item<int64_t>(), 1);
}

TEST(CLIPGolden, LogitsAndNormalisedEmbeddings) {
  torch::NoGradGuard no_grad;
  auto& clip = tiny_clip();
  EXPECT_TENSOR_NEAR(clip->logit_scale, E("clip.logit_scale"), kTol);
  torch::Tensor img = clip->image_embeds(clip->vision_model->forward(E("vision.pixel_values")).pooler_output);
  auto text = clip->text_model->forward(E("text.batch.input_ids"), E("text.batch.attention_mask"));
  torch::Tensor txt = clip->text_embeds(text.pooler_output);
  EXPECT_TENSOR_NEAR(img / img.norm(2, -1, true), E("clip.image_embeds_normalized"), kTol);
  EXPECT_TENSOR_NEAR(txt / txt.norm(2, -1, true), E("clip.text_embeds_normalized"), kTol);
  torch::Tensor logits = clip->logits_per_image(img, txt);
  EXPECT_TENSOR_NEAR(logits, E("clip.logits_per_image"), kTol);
  EXPECT_TENSOR_NEAR(logits.t(), E("clip.logits_per_text"), kTol);
}

TEST(CLIPLoad, PytorchModelBinGivesTheSameModel) {
  torch::NoGradGuard no_grad;
  auto bin = clipcap::load_clip(clip_dir_with("pytorch_model.bin", "clip-bin"));
  auto& ref = tiny_clip();
  auto ref_params = ref->named_parameters();
  auto bin_params = bin->named_parameters();
  ASSERT_EQ(bin_params.size(), ref_params.size());
  for (const auto& p : ref_params) EXPECT_TENSOR_EQ(bin_params[p.key()], p.value()) << p.key();
  auto out = bin->vision_model->forward(E("vision.pixel_values"));
  EXPECT_TENSOR_NEAR(out.pooler_output, E("vision.pooler_output"), kTol);
  auto text = bin->text_model->forward(E("text.batch.input_ids"), E("text.batch.attention_mask"));
  EXPECT_TENSOR_NEAR(bin->text_embeds(text.pooler_output), E("text.batch.text_embeds"), kTol);
}

TEST(CLIPLoad, VisionOnlySkipsTheTextTower) {
  torch::NoGradGuard no_grad;
  clipcap::CLIPLoadOptions opts;
  opts.with_text = false;
  auto clip = clipcap::load_clip(fixture("tiny-clip"), opts);
  EXPECT_TRUE(clip->text_model.is_empty());
  EXPECT_TRUE(clip->text_projection.is_empty());
  for (const auto& p : clip->named_parameters()) EXPECT_EQ(p.key().rfind("text_", 0), std::string::npos) << p.key();
  auto out = clip->vision_model->forward(E("vision.pixel_values"));
  EXPECT_TENSOR_NEAR(clip->image_embeds(out.pooler_output), E("vision.image_embeds"), kTol);
  EXPECT_THROW(clip->text_embeds(out.pooler_output), clipcap::Error);
}

// An HF CLIPVisionModel(WithProjection) directory: vision_config at the top level, vision weights only.
TEST(CLIPLoad, CLIPVisionModelDirectory) {
  torch::NoGradGuard no_grad;
  auto full = clipcap::read_json(fixture("tiny-clip/config.json"));
  auto all = clipcap::load_safetensors(fixture("tiny-clip/model.safetensors"));
  for (bool with_projection : {false, true}) {
    std::string dir = clipcap::test::temp_dir("clip-vision-only");
    nlohmann::json cfg = full["vision_config"];
    cfg["model_type"] = "clip_vision_model";
    cfg["projection_dim"] = full["projection_dim"];
    clipcap::write_json_atomic(dir + "/config.json", cfg);
    clipcap::NamedTensors keep;
    for (const auto& [name, t] : all)
      if (name.rfind("vision_model.", 0) == 0 || (with_projection && name == "visual_projection.weight"))
        keep.emplace_back(name, t);
    clipcap::save_safetensors(dir + "/model.safetensors", keep);

    auto clip = clipcap::load_clip(dir);
    EXPECT_TRUE(clip->config.vision_only);
    EXPECT_TRUE(clip->text_model.is_empty());
    auto out = clip->vision_model->forward(E("vision.pixel_values"));
    EXPECT_TENSOR_NEAR(out.pooler_output, E("vision.pooler_output"), kTol);
    if (with_projection) {
      EXPECT_TENSOR_NEAR(clip->image_embeds(out.pooler_output), E("vision.image_embeds"), kTol);
    } else {
      EXPECT_THROW(clip->image_embeds(out.pooler_output), clipcap::Error);
    }
  }
}

TEST(CLIPBadInput, ImageOfTheWrongSizeNamesConfigAndShape) {
  torch::NoGradGuard no_grad;
  auto& clip = tiny_clip();
  const int64_t s = clip->config.vision.image_size;
  auto pixels = torch::zeros({1, 3, s + 8, s});
  expect_error([&] { clip->vision_model->forward(pixels); }, {"config.json", "pixel_values", "image_size",
                                                              clipcap::shape_string(pixels.sizes().vec())});
  expect_error([&] { clip->vision_model->forward(torch::zeros({3, s, s})); }, {"config.json", "pixel_values"});
}

TEST(CLIPBadInput, TokenIdsOutsideTheVocabulary) {
  torch::NoGradGuard no_grad;
  auto& clip = tiny_clip();
  auto ids = torch::full({1, 3}, clip->config.text.vocab_size, torch::kLong);
  expect_error([&] { clip->text_model->forward(ids); }, {"config.json", "vocabulary"});
  auto too_long = torch::zeros({1, clip->config.text.max_position_embeddings + 1}, torch::kLong);
  expect_error([&] { clip->text_model->forward(too_long); }, {"config.json", "max_position_embeddings"});
}

TEST(CLIPBadInput, MissingConfigFieldNamesTheField) {
  std::string dir = clip_dir_with("model.safetensors", "clip-missing-field");
  auto cfg = clipcap::read_json(dir + "/config.json");
  cfg["vision_config"].erase("patch_size");
  clipcap::write_json_atomic(dir + "/config.json", cfg);
  expect_error([&] { clipcap::load_clip(dir); }, {dir + "/config.json", "vision_config", "patch_size", "missing"});

  cfg = clipcap::read_json(fixture("tiny-clip/config.json"));
  cfg.erase("projection_dim");
  clipcap::write_json_atomic(dir + "/config.json", cfg);
  expect_error([&] { clipcap::load_clip(dir); }, {dir + "/config.json", "projection_dim"});
}

TEST(CLIPBadInput, ConfigThatIsNotJson) {
  std::string dir = clip_dir_with("model.safetensors", "clip-not-json");
  std::ofstream(dir + "/config.json") << "{\"model_type\": \"clip\",\n  oops }";
  expect_error([&] { clipcap::load_clip(dir); }, {dir + "/config.json", "JSON"});
}

TEST(CLIPBadInput, GPT2ConfigIsNotACLIPModel) {
  std::string dir = clip_dir_with("model.safetensors", "clip-wrong-type");
  fs::copy_file(fixture("tiny-gpt2/config.json"), dir + "/config.json", fs::copy_options::overwrite_existing);
  expect_error([&] { clipcap::load_clip(dir); }, {dir + "/config.json", "model_type", "gpt2"});
}

TEST(CLIPBadInput, DirectoryWithoutWeights) {
  std::string dir = clipcap::test::temp_dir("clip-no-weights");
  fs::copy_file(fixture("tiny-clip/config.json"), dir + "/config.json");
  expect_error([&] { clipcap::load_clip(dir); }, {dir, "model.safetensors"});
}

TEST(CLIPBadInput, MissingTensorIsNamed) {
  std::string dir = clipcap::test::temp_dir("clip-missing-tensor");
  fs::copy_file(fixture("tiny-clip/config.json"), dir + "/config.json");
  clipcap::NamedTensors keep;
  const std::string dropped = "vision_model.post_layernorm.weight";
  for (const auto& [name, t] : clipcap::load_safetensors(fixture("tiny-clip/model.safetensors")))
    if (name != dropped) keep.emplace_back(name, t);
  clipcap::save_safetensors(dir + "/model.safetensors", keep);
  expect_error([&] { clipcap::load_clip(dir); }, {dir + "/model.safetensors", "missing tensor", dropped});
}

TEST(CLIPBadInput, WeightsThatDisagreeWithConfig) {
  std::string dir = clip_dir_with("model.safetensors", "clip-bad-shape");
  auto cfg = clipcap::read_json(dir + "/config.json");
  cfg["vision_config"]["intermediate_size"] = cfg["vision_config"]["intermediate_size"].get<int64_t>() + 4;
  clipcap::write_json_atomic(dir + "/config.json", cfg);
  expect_error([&] { clipcap::load_clip(dir); },
               {dir + "/model.safetensors", "vision_model.encoder.layers.0.mlp.fc1", "has shape", dir + "/config.json"});
}

TEST(CLIPBf16, PoolerOutputCloseToFloat32) {
  torch::NoGradGuard no_grad;
  clipcap::CLIPLoadOptions opts;
  opts.dtype = torch::kBFloat16;
  auto clip = clipcap::load_clip(fixture("tiny-clip"), opts);
  EXPECT_EQ(clip->vision_model->embeddings->class_embedding.scalar_type(), torch::kBFloat16);
  // bf16 keeps 8 bits of mantissa: ~2.5e-2 measured on the public fixture (values up to ~2.4),
  // so allow 5e-2 per unit of the largest expected value; a wrong model is off by O(1).
  auto tol = [](const torch::Tensor& want) { return 5e-2 * std::max(1.0, want.abs().max().item<double>()); };
  auto out = clip->vision_model->forward(E("vision.pixel_values"));
  EXPECT_EQ(out.pooler_output.scalar_type(), torch::kBFloat16);
  EXPECT_TENSOR_NEAR(out.pooler_output.to(torch::kFloat), E("vision.pooler_output"), tol(E("vision.pooler_output")));
  auto text = clip->text_model->forward(E("text.batch.input_ids"), E("text.batch.attention_mask"));
  EXPECT_TENSOR_NEAR(text.pooler_output.to(torch::kFloat), E("text.batch.pooler_output"),
                     tol(E("text.batch.pooler_output")));
}
