// Upstream's captioning algorithm reproduced exactly on the upstream-legacy fixture (README 6.3,
// 6.4), through an imported model directory.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "common/json_util.h"
#include "image/image_io.h"
#include "model/captioner.h"
#include "model/legacy_captioner.h"
#include "model/upstream_import.h"
#include "tests/test_support.h"

namespace clipcap {
namespace {

using test::expected_tensor;
using test::fixture;

Captioner& legacy_model() {
  static Captioner cap = [] {
    std::string dir = test::temp_dir("legacy") + "/model";
    UpstreamImport in;
    in.checkpoint = fixture("upstream-legacy/model.pt");
    in.config = fixture("upstream-legacy/upstream_config.json");
    import_upstream(in, dir);
    return Captioner::load(dir);
  }();
  return cap;
}

const nlohmann::json& legacy_json() {
  static nlohmann::json j = read_json(fixture("expected/legacy.json"));
  return j;
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kInt64).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

TEST(Legacy, ImportedModelIsLegacyWithUpstreamMaxLen) {
  auto uc = read_json(fixture("upstream-legacy/upstream_config.json"));
  EXPECT_TRUE(legacy_model().config().legacy);
  EXPECT_EQ(legacy_model().config().decoding.max_len, uc["max_len"].get<int>());
  EXPECT_EQ(legacy_model().config().mapping.ep_len, uc["ep_len"].get<int64_t>());
}

TEST(Legacy, EveryImageStepByStep) {
  Captioner& cap = legacy_model();
  torch::NoGradGuard no_grad;
  const int max_len = cap.config().decoding.max_len;
  for (const auto& c : legacy_json()["cases"]) {
    const std::string name = c["name"], key = "legacy." + name + ".";
    SCOPED_TRACE(name);
    auto pixels = cap.processor().preprocess(read_image(fixture(c["image"]))).unsqueeze(0);  // (1, 3, H, W)
    auto pooled = cap.embed_images(pixels);                                                 // (1, D)
    EXPECT_TENSOR_NEAR(pooled, expected_tensor("legacy.safetensors", key + "pooler_output"), 1e-4);
    auto prefix = cap.prefix(pooled).squeeze(0);  // (E, D)
    EXPECT_TENSOR_NEAR(prefix, expected_tensor("legacy.safetensors", key + "prefix"), 1e-4);

    LegacyTrace trace;
    auto tokens = legacy_generate(*cap.gpt2(), prefix, max_len, &trace);
    EXPECT_EQ(tokens, to_vector(expected_tensor("legacy.safetensors", key + "tokens")));
    EXPECT_EQ(tokens, c["tokens"].get<std::vector<int64_t>>());
    EXPECT_TENSOR_NEAR(trace.start_emb, expected_tensor("legacy.safetensors", key + "start_emb"), 1e-4);
    EXPECT_TENSOR_NEAR(trace.step0_inputs_embeds, expected_tensor("legacy.safetensors", key + "step0_gpt2_inputs_embeds"), 1e-4);
    EXPECT_TENSOR_NEAR(trace.step1_inputs_embeds, expected_tensor("legacy.safetensors", key + "step1_gpt2_inputs_embeds"), 1e-4);
    EXPECT_TENSOR_NEAR(torch::tensor(trace.step_logsumexp, torch::kFloat64),
                       expected_tensor("legacy.safetensors", key + "step_logsumexp"), 1e-4);
    const auto& all = test::expected("legacy.safetensors");
    if (all.count(key + "step0_logits_last")) {
      EXPECT_TENSOR_NEAR(trace.step0_logits_last.unsqueeze(0), all.at(key + "step0_logits_last"), 1e-4);
    }

    EXPECT_EQ(cap.text(tokens), c["caption"].get<std::string>());
  }
}

TEST(Legacy, CaptionImagesInOneBatchGivesUpstreamCaptions) {
  Captioner& cap = legacy_model();
  std::vector<Image> images;
  std::vector<std::string> want;
  for (const auto& c : legacy_json()["cases"]) {
    images.push_back(read_image(fixture(c["image"])));
    want.push_back(c["caption"]);
  }
  EXPECT_EQ(cap.caption_images(images, cap.config().decoding), want);
}

TEST(Legacy, OtherStrategiesAreRefused) {
  Captioner& cap = legacy_model();
  DecodeOptions opts = cap.config().decoding;
  opts.strategy = "beam";
  opts.beam_size = 3;
  auto embeds = torch::zeros({1, cap.config().mapping.input_size});
  try {
    cap.caption_embeddings(embeds, opts);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("legacy"), std::string::npos) << e.what();
  }
}

// Reranking needs candidates, which upstream's greedy algorithm does not write.
TEST(Legacy, RerankingIsRefusedByName) {
  Captioner& cap = legacy_model();
  DecodeOptions opts = cap.config().decoding;
  opts.rerank = "clip";
  auto embeds = torch::zeros({1, cap.config().mapping.input_size});
  test::expect_error([&] { cap.candidates_for(embeds, opts, 4); }, {"legacy", "no candidates to rerank"});
}

TEST(Legacy, TrainLossMatchesUpstream) {
  Captioner& cap = legacy_model();
  torch::NoGradGuard no_grad;
  auto loss = legacy_train_loss(*cap.mapping(), *cap.gpt2(), expected_tensor("legacy.safetensors", "legacy.train.img_emb"),
                                expected_tensor("legacy.safetensors", "legacy.train.trg_cap"),
                                expected_tensor("legacy.safetensors", "legacy.train.att_mask"));
  EXPECT_TENSOR_NEAR(loss, expected_tensor("legacy.safetensors", "legacy.train.loss"), 1e-4);
  EXPECT_NEAR(loss.item<double>(), legacy_json()["train_loss"].get<double>(), 1e-4);
}

TEST(Legacy, TextFollowsPython) {
  const Tokenizer& tok = legacy_model().tokenizer();
  const int64_t eos = legacy_model().config().gpt2.eos_token_id;
  EXPECT_EQ(legacy_caption_text(tok, {eos}), "");  // upstream crashed here; we give an empty caption
  // tokens[:-1] always drops the last token, whatever it is.
  auto dog = tok.encode(" a dog .");
  auto with_extra = dog;
  with_extra.push_back(dog.back());
  EXPECT_EQ(legacy_caption_text(tok, with_extra), "A dog.");  // clean-up joins " ."

  EXPECT_EQ(python_strip(" \t\xC2\xA0x y\xE3\x80\x80\n"), "x y");       // NBSP, ideographic space
  EXPECT_EQ(python_strip("\xE2\x80\x8Bx"), "\xE2\x80\x8Bx");           // U+200B is not whitespace
  EXPECT_EQ(python_strip("\x1Fx\x1C"), "x");                           // Python counts U+001C..U+001F
  EXPECT_EQ(upper_first_code_point("\xC3\x9F" "ab"), "SSab");          // full case mapping: ß -> SS
  EXPECT_EQ(upper_first_code_point("\xC3\xA9t\xC3\xA9"), "\xC3\x89t\xC3\xA9");  // é -> É, rest untouched
  EXPECT_EQ(upper_first_code_point("istanbul"), "Istanbul");
  EXPECT_EQ(upper_first_code_point("1a"), "1a");
  EXPECT_EQ(upper_first_code_point(""), "");
}

}  // namespace
}  // namespace clipcap
