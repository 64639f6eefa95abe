// The caption backend seam (backend/caption_backend.h) with the local model behind it, and the
// flags that choose it: its captions are the captioner's own, a request of several images is the
// caption of their mean embedding, and decoding flags merge over the model's defaults.
#include <torch/torch.h>

#include "backend/backend_flags.h"
#include "backend/local_backend.h"
#include "common/cli_flags.h"
#include "image/image_io.h"
#include "tests/test_support.h"
#include "tests/test_video_support.h"

namespace clipcap {
namespace {

LocalBackend& backend() {
  static LocalBackend b(Captioner::load(test::tiny_model_dir()), test::tiny_model_dir(), {2, 3});
  return b;
}

std::vector<Image> fixture_images() {
  std::vector<Image> out;
  for (const char* f : {"rgb_160x120.png", "palette_100x30.png", "tiny_rgb_20x13.png", "gray_37x53.png", "la_29x71.png"})
    out.push_back(read_image(test::fixture(std::string("images/") + f)));
  return out;
}

DecodeOptions short_greedy() {
  DecodeOptions d;
  d.max_len = 8;
  return d;
}

TEST(CaptionBackend, LocalCaptionsAreTheCaptionersOwnWithTheirLogProbabilities) {
  const auto images = fixture_images();
  // Five images in encode batches of 2 and caption batches of 3: batching changes nothing.
  const std::vector<Caption> got = backend().caption_images(images, short_greedy());
  const std::vector<std::string> want = backend().captioner().caption_images(images, short_greedy());
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].text, want[i]) << i;
    EXPECT_LT(got[i].logprob, 0.0) << i;
    EXPECT_GE(got[i].scored_tokens, 1) << i;
    EXPECT_LE(got[i].scored_tokens, 8) << i;
  }
}

TEST(CaptionBackend, ARequestOfSeveralImagesIsTheCaptionOfTheirMeanEmbedding) {
  const auto images = fixture_images();
  std::vector<ImagePayload> prepared;
  for (const auto& img : images) prepared.push_back(backend().prepare(img));
  const std::vector<ImagePayload> encoded = backend().encode(std::move(prepared));
  ASSERT_EQ(encoded.size(), images.size());
  const auto got = backend().caption({{&encoded[0], &encoded[1], &encoded[2]}, {&encoded[4]}}, short_greedy());
  const torch::Tensor mean = torch::stack({encoded[0].tensor, encoded[1].tensor, encoded[2].tensor}).mean(0);
  const auto want = backend().captioner().caption_embeddings(torch::stack({mean, encoded[4].tensor}), short_greedy());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].text, want[0]);
  EXPECT_EQ(got[1].text, want[1]);
  test::expect_error([&] { backend().caption({{}}, short_greedy()); }, {"a request without images"});
}

TEST(CaptionBackend, LocalDescribesItselfAndItsEmbeddings) {
  const nlohmann::json d = backend().describe();
  EXPECT_EQ(d["backend"], "local");
  EXPECT_EQ(d["name"], "tiny");
  EXPECT_EQ(d["size"], "S");
  EXPECT_EQ(d["dir"], test::tiny_model_dir());
  const auto space = backend().embedding_space();
  ASSERT_TRUE(space.has_value());
  EXPECT_EQ(space->kind, "pooler_output");
  EXPECT_EQ(space->dim, backend().captioner().config().mapping.input_size);
  EXPECT_EQ(backend().image_batch(), 2);
  EXPECT_EQ(backend().caption_batch(), 3);
}

// The decoding flags a user gives win over the model's config.json; the rest keep its values.
DecodeOptions resolved(const std::vector<std::string>& args, const DecodeOptions& model_defaults) {
  CLI::App app{"test"};
  BackendFlags flags;
  add_backend_flags(app, flags, /*model_required=*/false);
  std::string line;
  for (const auto& a : args) line += a + " ";
  app.parse(line, /*program_name_included=*/false);
  return resolve_decoding(app, flags, model_defaults);
}

TEST(CaptionBackend, DecodingFlagsMergeOverTheModelsDefaults) {
  DecodeOptions model;
  model.max_len = 24;
  model.strategy = "beam";
  model.beam_size = 3;
  EXPECT_EQ(resolved({}, model).strategy, "beam");
  EXPECT_EQ(resolved({}, model).max_len, 24);
  EXPECT_EQ(resolved({"--max-len", "9"}, model).max_len, 9);
  EXPECT_EQ(resolved({"--max-len", "9"}, model).beam_size, 3);
  EXPECT_EQ(resolved({"--strategy", "greedy"}, model).strategy, "greedy");
  // The shorthands of older command lines.
  EXPECT_EQ(resolved({"--beam-size", "1"}, model).strategy, "greedy");
  EXPECT_EQ(resolved({"--beam", "4"}, DecodeOptions{}).strategy, "beam");
  EXPECT_EQ(resolved({"--sample", "--seed", "5"}, model).strategy, "sample");
  EXPECT_EQ(resolved({"--sample", "--seed", "5"}, model).seed, 5u);
  test::expect_error([&] { resolved({"--sample", "--beam-size", "3"}, model); }, {"--sample", "--beam-size 3"});
  test::expect_error([&] { resolved({"--sample", "--strategy", "beam"}, model); }, {"--sample", "--strategy beam"});
  test::expect_error([&] { resolved({"--top-p", "1.5"}, model); }, {"top_p (--top-p) must be in (0, 1], got 1.5"});
  test::expect_error([&] { resolved({"--strategy", "fast"}, model); }, {"--strategy", "greedy, sample, beam"});
}

TEST(CaptionBackend, UnknownBackendsAndMissingModelsAreNamedBeforeAnythingLoads) {
  CLI::App app{"test"};
  BackendFlags flags;
  add_backend_flags(app, flags, /*model_required=*/false);
  app.parse("--backend remote", false);
  test::expect_error([&] { load_backend(flags, app); }, {"--backend", "unknown backend 'remote'", "local"});
  flags.backend = "local";
  test::expect_error([&] { load_backend(flags, app); }, {"--backend local", "-m/--model"});
  test::expect_error([&] { load_backend(flags, app, {0, 4}); }, {"--batch-size must be >= 1, got 0"});
}

}  // namespace
}  // namespace clipcap
