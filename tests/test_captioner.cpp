// The native model directory: create from HF CLIP + GPT-2, save, load, caption; clear errors for
// directories that are not clipcap models.
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/json_util.h"
#include "image/image_io.h"
#include "model/captioner.h"
#include "model/legacy_captioner.h"
#include "model/weights/safetensors.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;

namespace clipcap {
namespace {

using test::expected_tensor;
using test::fixture;

MappingConfig small_mapping() {
  MappingConfig m;
  m.ep_len = 3;
  m.num_layers = 1;
  m.n_heads = 2;
  m.forward_expansion = 2;
  m.dropout = 0.1;
  return m;
}

std::vector<std::string> fixture_images() {
  std::vector<std::string> paths;
  const auto legacy = read_json(fixture("expected/legacy.json"));  // keep it alive for the loop
  for (const auto& c : legacy["cases"]) paths.push_back(fixture(c["image"]));
  return paths;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

void expect_same_weights(const Captioner& a, const Captioner& b) {
  auto wa = a.named_weights(), wb = b.named_weights();
  ASSERT_EQ(wa.size(), wb.size());
  for (size_t i = 0; i < wa.size(); ++i) {
    EXPECT_EQ(wa[i].first, wb[i].first);
    EXPECT_TENSOR_EQ(wa[i].second, wb[i].second);
  }
}

TEST(Captioner, CreateSaveLoadRoundTrip) {
  torch::manual_seed(3);
  auto fresh = Captioner::create(fixture("tiny-clip"), fixture("tiny-gpt2"), small_mapping());
  EXPECT_EQ(fresh.config().mapping.input_size, fresh.config().clip.vision.hidden_size);
  EXPECT_EQ(fresh.config().mapping.output_size, fresh.config().gpt2.n_embd);
  std::string dir = test::temp_dir("captioner") + "/model";
  fresh.save(dir);
  for (const char* f : {"config.json", "preprocessor_config.json", "model.safetensors", "vocab.json", "merges.txt"})
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  EXPECT_FALSE(fs::exists(dir + ".tmp"));

  auto j = read_json(dir + "/config.json");
  EXPECT_EQ(j["format"], "clipcap");
  EXPECT_EQ(j["format_version"], kCaptionerFormatVersion);
  EXPECT_EQ(j["mapping"]["ep_len"], 3);
  EXPECT_EQ(j["legacy"], false);
  EXPECT_EQ(j["tokenizer"], "gpt2-bpe");

  SafetensorsFile st(dir + "/model.safetensors");
  EXPECT_TRUE(st.contains("clip.vision_model.post_layernorm.weight"));
  EXPECT_TRUE(st.contains("mapping.mapper.weight"));
  EXPECT_TRUE(st.contains("gpt2.wte.weight"));
  EXPECT_FALSE(st.contains("gpt2.lm_head.weight"));  // tied
  EXPECT_FALSE(st.contains("clip.visual_projection.weight"));

  auto loaded = Captioner::load(dir);
  expect_same_weights(fresh, loaded);
  auto embeds = torch::randn({3, fresh.config().mapping.input_size});
  DecodeOptions opts;
  opts.max_len = 10;
  EXPECT_EQ(loaded.caption_embeddings(embeds, opts), fresh.caption_embeddings(embeds, opts));

  // Saving over an existing model replaces it whole.
  loaded.save(dir);
  expect_same_weights(fresh, Captioner::load(dir));
}

TEST(Captioner, ImageEmbedsPrefixInput) {
  CaptionerCreateOptions o;
  o.prefix_input = "image_embeds";
  o.normalize_prefix_input = true;
  MappingConfig m = small_mapping();
  m.n_heads = 4;
  auto fresh = Captioner::create(fixture("tiny-clip"), fixture("tiny-gpt2"), m, o);
  EXPECT_EQ(fresh.config().mapping.input_size, fresh.config().clip.projection_dim);
  std::string dir = test::temp_dir("captioner") + "/embeds";
  fresh.save(dir);
  SafetensorsFile st(dir + "/model.safetensors");
  EXPECT_TRUE(st.contains("clip.visual_projection.weight"));
  auto loaded = Captioner::load(dir);
  EXPECT_TRUE(loaded.config().normalize_prefix_input);
  // embed_images gives CLIP's image_embeds (get_image_features) for the fixture batch.
  const auto& px = expected_tensor("clip.safetensors", "vision.pixel_values");
  EXPECT_TENSOR_NEAR(loaded.embed_images(px), expected_tensor("clip.safetensors", "vision.image_embeds"), 1e-4);
  auto e = loaded.embed_images(px);
  // Normalisation makes the prefix independent of the embedding's scale.
  EXPECT_TENSOR_NEAR(loaded.prefix(e * 3), loaded.prefix(e), 1e-5);
}

TEST(Captioner, EmbedImagesIsPoolerOutput) {
  auto cap = Captioner::create(fixture("tiny-clip"), fixture("tiny-gpt2"), small_mapping());
  const auto& px = expected_tensor("clip.safetensors", "vision.pixel_values");
  EXPECT_TENSOR_NEAR(cap.embed_images(px), expected_tensor("clip.safetensors", "vision.pooler_output"), 1e-4);
}

TEST(Captioner, NativeBatchEqualsOneByOne) {
  torch::manual_seed(5);
  auto cap = Captioner::create(fixture("tiny-clip"), fixture("tiny-gpt2"), small_mapping());
  std::vector<Image> images;
  for (const auto& p : fixture_images()) images.push_back(read_image(p));
  DecodeOptions opts;
  opts.max_len = 12;
  auto batch = cap.caption_images(images, opts);
  ASSERT_EQ(batch.size(), images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    EXPECT_EQ(batch[i], cap.caption_images({images[i]}, opts)[0]) << i;
    EXPECT_EQ(batch[i], python_strip(batch[i]));
  }
}

TEST(Captioner, NotAModelDirectoryErrors) {
  std::string msg = error_of([] { Captioner::load("/nonexistent/clipcap-model"); });
  EXPECT_NE(msg.find("/nonexistent/clipcap-model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;

  msg = error_of([] { Captioner::load(fixture("tiny-gpt2")); });
  EXPECT_NE(msg.find("tiny-gpt2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("looks like an HF GPT-2 directory, not a clipcap model"), std::string::npos) << msg;

  msg = error_of([] { Captioner::load(fixture("tiny-clip")); });
  EXPECT_NE(msg.find("HF CLIP directory"), std::string::npos) << msg;

  msg = error_of([] { Captioner::load(fixture("upstream-legacy")); });
  EXPECT_NE(msg.find("import-upstream"), std::string::npos) << msg;

  std::string empty = test::temp_dir("captioner-empty");
  msg = error_of([&] { Captioner::load(empty); });
  EXPECT_NE(msg.find("no config.json"), std::string::npos) << msg;
}

TEST(Captioner, NewerFormatVersionAndBrokenFilesError) {
  auto cap = Captioner::create(fixture("tiny-clip"), fixture("tiny-gpt2"), small_mapping());
  std::string dir = test::temp_dir("captioner") + "/future";
  cap.save(dir);
  auto j = read_json(dir + "/config.json");
  j["format_version"] = kCaptionerFormatVersion + 1;
  write_json_atomic(dir + "/config.json", j);
  std::string msg = error_of([&] { Captioner::load(dir); });
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("newer"), std::string::npos) << msg;

  j["format_version"] = kCaptionerFormatVersion;
  j["mapping"]["ep_len"] = 5;  // weights no longer fit
  write_json_atomic(dir + "/config.json", j);
  msg = error_of([&] { Captioner::load(dir); });
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mapping.mapper"), std::string::npos) << msg;

  j["mapping"]["ep_len"] = 3;
  write_json_atomic(dir + "/config.json", j);
  fs::remove(dir + "/model.safetensors");
  msg = error_of([&] { Captioner::load(dir); });
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST(Captioner, SaveRefusesToReplaceOtherDirectories) {
  auto cap = Captioner::create(fixture("tiny-clip"), fixture("tiny-gpt2"), small_mapping());
  std::string dir = test::temp_dir("captioner-notours");
  write_file_atomic(dir + "/notes.txt", "keep me");
  std::string msg = error_of([&] { cap.save(dir); });
  EXPECT_NE(msg.find("not a clipcap model directory"), std::string::npos) << msg;
  EXPECT_TRUE(fs::exists(dir + "/notes.txt"));
}

}  // namespace
}  // namespace clipcap
