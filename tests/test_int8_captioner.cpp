// int8 weights (CaptionerLoadOptions::int8_weights, --dtype int8) against the f32 model: greedy
// captions of the golden fixtures (upstream-legacy captions, GPT-2 greedy ids) and of the embedded
// emoji model; and what a quantised captioner refuses to do.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "common/json_util.h"
#include "image/image_io.h"
#include "model/captioner.h"
#include "model/gpt2.h"
#include "model/quantize.h"
#include "model/upstream_import.h"
#include "tests/test_support.h"

namespace clipcap {
namespace {

using test::fixture;

// The bar: at least 95% of greedy captions identical to f32's.
constexpr double kMinIdentical = 0.95;

std::string legacy_model_dir() {
  return test::cached_dir("int8-legacy-model", [](const std::string& dir) {
    UpstreamImport in;
    in.checkpoint = fixture("upstream-legacy/model.pt");
    in.config = fixture("upstream-legacy/upstream_config.json");
    import_upstream(in, dir + "/model");
  }) + "/model";
}

double identical_share(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  EXPECT_EQ(a.size(), b.size());
  size_t same = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) same += a[i] == b[i];
  return a.empty() ? 0.0 : static_cast<double>(same) / static_cast<double>(a.size());
}

// Smooth random colour fields (8 x 8 noise scaled up to 96 x 96): deterministic inputs unlike any
// training image, where greedy margins are smallest.
std::vector<Image> colour_fields(int count) {
  torch::manual_seed(21);
  std::vector<Image> images;
  for (int i = 0; i < count; ++i) {
    torch::Tensor small = torch::rand({1, 3, 8, 8});
    torch::Tensor big = torch::nn::functional::interpolate(
        small, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{96, 96}).mode(torch::kBilinear).align_corners(false));
    torch::Tensor hwc = (big[0].permute({1, 2, 0}) * 255).round().clamp(0, 255).to(torch::kUInt8).contiguous();
    Image im;
    im.width = 96;
    im.height = 96;
    im.pixels.assign(hwc.data_ptr<uint8_t>(), hwc.data_ptr<uint8_t>() + hwc.numel());
    images.push_back(std::move(im));
  }
  return images;
}

const nlohmann::json& legacy_cases() {
  static const nlohmann::json cases = read_json(fixture("expected/legacy.json"))["cases"];
  return cases;
}

std::vector<Image> fixture_images() {
  std::vector<Image> images;
  for (const auto& c : legacy_cases()) images.push_back(read_image(fixture(c["image"])));
  return images;
}

TEST(Int8Captioner, LegacyFixtureCaptionsUnchanged) {
  Captioner f32 = Captioner::load(legacy_model_dir());
  CaptionerLoadOptions int8_opts;
  int8_opts.int8_weights = true;
  Captioner int8 = Captioner::load(legacy_model_dir(), int8_opts);
  ASSERT_TRUE(int8.int8_weights());
  std::vector<std::string> want;
  for (const auto& c : legacy_cases()) want.push_back(c["caption"]);
  const std::vector<Image> images = fixture_images();
  ASSERT_EQ(images.size(), 6u);
  ASSERT_EQ(f32.caption_images(images, f32.config().decoding), want);
  const std::vector<std::string> got = int8.caption_images(images, int8.config().decoding);
  EXPECT_GE(identical_share(got, want), kMinIdentical) << "int8 captions of the golden images differ";
}

TEST(Int8Captioner, GoldenGpt2GreedyIdsUnchanged) {
  torch::NoGradGuard no_grad;
  GPT2 gpt2 = load_gpt2(fixture("tiny-gpt2"));
  EXPECT_EQ(quantize_linears_int8(*gpt2), 4 * gpt2->config.n_layer + 1);  // every Conv1D and the LM head
  const torch::Tensor& prefix = test::expected_tensor("gpt2.safetensors", "gpt2.greedy.prefix_embeds");
  const torch::Tensor& want = test::expected_tensor("gpt2.safetensors", "gpt2.greedy.tokens");
  KVCache cache;
  torch::Tensor h = gpt2->forward(prefix, {}, &cache);
  std::vector<torch::Tensor> got;
  for (int64_t i = 0; i < want.size(1); ++i) {
    torch::Tensor next = gpt2->logits(h.select(1, -1)).argmax(-1);  // (B)
    got.push_back(next);
    h = gpt2->forward(gpt2->embed(next.unsqueeze(1)), {}, &cache);
  }
  EXPECT_TRUE(torch::equal(torch::stack(got, 1), want.to(torch::kLong)));
}

// The bar (95 %) is for the held-out emoji split: 98.1 % identical for the default of
// 2026-12-06 (bench/README.md; its data comes from npm at set-up, so not here). Fixture photos and
// random colour fields are far from any emoji, where the model's greedy choices are near ties more
// often: 93.8 % (60 of 64) for that default, 98.4 % for the one before.
constexpr double kMinIdenticalOffDomain = 0.90;

TEST(Int8Captioner, EmbeddedEmojiModelCaptionsUnchangedOnFixturesAndColourFields) {
  const std::string dir = test::source_path("models/emoji-tiny");
  Captioner f32 = Captioner::load(dir);
  CaptionerLoadOptions int8_opts;
  int8_opts.int8_weights = true;
  Captioner int8 = Captioner::load(dir, int8_opts);
  std::vector<Image> images = fixture_images();
  std::vector<Image> fields = colour_fields(58);
  images.insert(images.end(), std::make_move_iterator(fields.begin()), std::make_move_iterator(fields.end()));
  const std::vector<std::string> want = f32.caption_images(images, f32.config().decoding);
  const std::vector<std::string> got = int8.caption_images(images, int8.config().decoding);
  const double share = identical_share(got, want);
  EXPECT_GE(share, kMinIdenticalOffDomain);
  std::printf("[ int8     ] %zu images, %.1f%% identical greedy captions\n", images.size(), 100 * share);
}

TEST(Int8Captioner, CannotBeSavedOrConverted) {
  CaptionerLoadOptions int8_opts;
  int8_opts.int8_weights = true;
  Captioner int8 = Captioner::load(test::source_path("models/emoji-tiny"), int8_opts);
  const std::string out = test::temp_dir("int8-save") + "/model";
  test::expect_error([&] { int8.save(out); }, {out, "int8", "cannot be saved"});
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace clipcap
