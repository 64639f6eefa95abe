// train_captioner: overfitting through a saved checkpoint, exact resume, the from-scratch decoder,
// bf16 autocast, gradient accumulation.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "common/json_util.h"
#include "data/embedding_dataset.h"
#include "model/captioner.h"
#include "tests/test_support.h"
#include "tests/test_train_support.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace clipcap::test;

TEST(Trainer, OverfitsAHandfulOfCaptionsAndTheSavedCheckpointSaysThemBack) {
  torch::set_num_threads(1);
  const std::string data = make_dataset("overfit", 4, 0);
  clipcap::TrainOptions o;
  o.config = tiny_train_config();
  o.data_dir = data;
  o.run_dir = temp_dir("overfit-run") + "/run";
  o.config.epochs = 60;
  auto r = clipcap::train_captioner(quiet(o));
  ASSERT_TRUE(r.finished);
  EXPECT_LT(r.train_loss, 0.4);  // not ~0: the fixture GPT-2's own dropout (0.1) stays on in training
  for (const char* which : {"/best", "/last"}) {
    auto cap = clipcap::Captioner::load(o.run_dir + which);
    clipcap::EmbeddingDataset ds(data);
    auto got = cap.caption_embeddings(ds.embeddings(), cap.config().decoding);
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(got[i], kTrainCaptions[i]) << which << " image " << i;
  }
  auto metrics = read_metrics(o.run_dir);
  ASSERT_EQ(metrics.size(), 60u);
  EXPECT_TRUE(metrics[0]["val_loss"].is_null());  // no val split
  EXPECT_GT(metrics[0]["train_loss"].get<double>(), metrics.back()["train_loss"].get<double>());
  EXPECT_EQ(metrics.back()["samples"].size(), 2u);
  EXPECT_TRUE(fs::exists(o.run_dir + "/train_config.json"));
  // Starting a new run over an existing one is refused (it would mix two runs' logs).
  expect_error([&] { clipcap::train_captioner(quiet(o)); }, {o.run_dir, "--resume"});
}

TEST(Trainer, InterruptedAndResumedLogsTheSameLossesAsUninterrupted) {
  torch::set_num_threads(1);
  const std::string data = make_dataset("resume", 10, 3);
  clipcap::TrainConfig cfg = tiny_train_config();
  cfg.epochs = 3;
  cfg.dropout = 0.2;                 // the RNG stream must resume too
  cfg.schedule = "upstream";
  cfg.freeze = "upstream";
  clipcap::TrainOptions a;
  a.config = cfg;
  a.data_dir = data;
  a.run_dir = temp_dir("resume-a") + "/run";
  ASSERT_TRUE(clipcap::train_captioner(quiet(a)).finished);

  clipcap::TrainOptions b = a;
  b.run_dir = temp_dir("resume-b") + "/run";
  b.stop_after_steps = 2;  // mid-epoch 1 (3 steps per epoch)
  auto first = clipcap::train_captioner(quiet(b));
  ASSERT_FALSE(first.finished);
  b.stop_after_steps = 2;  // and again, mid-epoch 2
  b.resume = true;
  ASSERT_FALSE(clipcap::train_captioner(quiet(b)).finished);
  b.stop_after_steps = -1;
  ASSERT_TRUE(clipcap::train_captioner(quiet(b)).finished);

  auto ma = read_metrics(a.run_dir), mb = read_metrics(b.run_dir);
  ASSERT_EQ(ma.size(), 3u);
  ASSERT_EQ(mb.size(), 3u);
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_NEAR(ma[e]["train_loss"].get<double>(), mb[e]["train_loss"].get<double>(), 1e-6) << "epoch " << e + 1;
    EXPECT_NEAR(ma[e]["val_loss"].get<double>(), mb[e]["val_loss"].get<double>(), 1e-6) << "epoch " << e + 1;
    EXPECT_EQ(ma[e]["step"], mb[e]["step"]);
  }
  // The lr the optimizer used peaks at the configured lr (not lr^2), reached at int(k*steps).
  double peak = 0;
  for (auto& m : ma) peak = std::max(peak, m["lr_max"].get<double>());
  EXPECT_DOUBLE_EQ(peak, cfg.lr);
}

TEST(Trainer, FromScratchDecoderWithSentencePieceLearnsTheCaptions) {
  torch::set_num_threads(1);
  const std::string data = make_dataset("scratch", 4, 0);
  clipcap::TrainConfig cfg = tiny_train_config();
  cfg.text_model = "";
  cfg.decoder.enabled = true;
  cfg.decoder.n_layer = 2;
  cfg.decoder.n_embd = 32;
  cfg.decoder.n_head = 4;
  cfg.decoder.vocab_size = 40;
  cfg.decoder.dropout = 0.0;
  cfg.epochs = 60;
  cfg.max_len = 32;  // a 40-piece vocabulary spells most words letter by letter
  clipcap::TrainOptions o;
  o.config = cfg;
  o.data_dir = data;
  o.run_dir = temp_dir("scratch-run") + "/run";
  ASSERT_TRUE(clipcap::train_captioner(quiet(o)).finished);
  auto cap = clipcap::Captioner::load(o.run_dir + "/best");
  EXPECT_EQ(cap.config().tokenizer, "sentencepiece");
  EXPECT_EQ(cap.config().gpt2.n_layer, 2);
  clipcap::EmbeddingDataset ds(data);
  auto got = cap.caption_embeddings(ds.embeddings(), cap.config().decoding);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(got[i], kTrainCaptions[i]) << "image " << i;
}

TEST(Trainer, BadInputsAreNamed) {
  const std::string data = make_dataset("bad", 2, 0);
  clipcap::TrainOptions o = quiet({});
  o.config = tiny_train_config();
  o.data_dir = data;
  o.run_dir = temp_dir("bad-run") + "/run";
  o.config.text_model = "/nonexistent/gpt2";
  expect_error([&] { clipcap::train_captioner(o); }, {"/nonexistent/gpt2", "--text-model"});
  o.config = tiny_train_config();
  o.data_dir = temp_dir("bad-empty");
  expect_error([&] { clipcap::train_captioner(o); }, {o.data_dir});
  o.resume = true;
  o.run_dir = temp_dir("bad-resume");
  expect_error([&] { clipcap::train_captioner(o); }, {o.run_dir, "train_config.json"});
}

TEST(Trainer, Bf16AutocastTrainsAndSavesF32Weights) {
  torch::set_num_threads(1);
  const std::string data = make_dataset("bf16", 4, 0);
  clipcap::TrainOptions o;
  o.config = tiny_train_config();
  o.config.autocast = "bf16";
  o.config.epochs = 30;
  o.data_dir = data;
  o.run_dir = temp_dir("bf16-run") + "/run";
  ASSERT_TRUE(clipcap::train_captioner(quiet(o)).finished);
  auto metrics = read_metrics(o.run_dir);
  EXPECT_LT(metrics.back()["train_loss"].get<double>(), 0.5 * metrics.front()["train_loss"].get<double>());
  auto cap = clipcap::Captioner::load(o.run_dir + "/last");
  for (const auto& [name, w] : cap.named_weights()) EXPECT_EQ(w.scalar_type(), torch::kFloat32) << name;
}

TEST(Trainer, GradientAccumulationEqualsTheWholeBatch) {
  torch::set_num_threads(1);
  // Captions of one token count (4 + EOS), so the mean of the micro-batch means is the batch mean.
  const std::string data = make_dataset("accum", 8, 0, {"A dog runs.", "A cat sits.", "A car stops.", "A bird sings."});
  auto run_with = [&](int batch_size_exp, int grad_accum, const std::string& tag) {
    clipcap::TrainOptions o;
    o.config = tiny_train_config();
    o.config.freeze = "mapping-only";  // GPT-2 in eval mode: its dropout would draw differently per micro-batch
    o.config.batch_size_exp = batch_size_exp;
    o.config.grad_accum = grad_accum;
    o.config.epochs = 3;
    o.data_dir = data;
    o.run_dir = temp_dir(tag) + "/run";
    EXPECT_TRUE(clipcap::train_captioner(quiet(o)).finished);
    return read_metrics(o.run_dir);
  };
  auto whole = run_with(2, 1, "accum-whole"), accum = run_with(1, 2, "accum-2");
  ASSERT_EQ(whole.size(), 3u);
  ASSERT_EQ(accum.size(), 3u);
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_EQ(whole[e]["step"], accum[e]["step"]) << "epoch " << e + 1;  // one optimizer step per 4 examples
    EXPECT_NEAR(whole[e]["train_loss"].get<double>(), accum[e]["train_loss"].get<double>(), 1e-5) << "epoch " << e + 1;
  }
  EXPECT_LT(whole[2]["train_loss"].get<double>(), whole[0]["train_loss"].get<double>());
}

// The whole pipeline on real files through the four executables' contract: clipcap-data embeds
// images, clipcap-train overfits their captions, clipcap-eval reads the run as it is and scores
// the captions it says back as perfect.

TEST(Trainer, PrefixNoiseChangesTrainingReproducibly) {
  torch::set_num_threads(1);
  const std::string data = make_dataset("noise", 8, 3);
  auto run = [&](double noise, const std::string& tag) {
    clipcap::TrainOptions o;
    o.config = tiny_train_config();
    o.config.epochs = 2;
    o.config.dropout = 0;
    o.config.prefix_noise = noise;
    o.data_dir = data;
    o.run_dir = temp_dir(tag) + "/run";
    EXPECT_TRUE(clipcap::train_captioner(quiet(o)).finished);
    return read_metrics(o.run_dir);
  };
  const auto clean = run(0, "noise-0"), noisy = run(0.5, "noise-a"), again = run(0.5, "noise-b");
  // The noise changes the training inputs from the first step on; the same noise, the same run.
  EXPECT_NE(clean[0]["train_loss"].get<double>(), noisy[0]["train_loss"].get<double>());
  EXPECT_EQ(noisy[1]["train_loss"].get<double>(), again[1]["train_loss"].get<double>());
  EXPECT_EQ(noisy[1]["val_loss"].get<double>(), again[1]["val_loss"].get<double>());
  clipcap::TrainConfig bad = tiny_train_config();
  nlohmann::json j = bad.to_json();
  j["prefix_noise"] = -0.1;
  expect_error([&] { clipcap::TrainConfig::from_json(j, "my.json"); }, {"my.json", "prefix_noise"});
}
