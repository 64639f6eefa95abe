// clipcap-train: schedule, objective, freeze policies, overfitting through a saved checkpoint,
// exact resume, the from-scratch decoder and the executable itself.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "common/json_util.h"
#include "common/sha256.h"
#include "data/embedding_dataset.h"
#include "model/captioner.h"
#include "model/clip.h"
#include "test_support.h"
#include "train/caption_batches.h"
#include "train/caption_objective.h"
#include "train/freeze_policy.h"
#include "train/lr_schedule.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace clipcap::test;

namespace {

const std::vector<std::string> kCaptions = {"A dog runs on the grass.", "Two cats sleep on a sofa.",
                                            "A red car in the rain.", "Children play football."};

// A dataset of the fixture CLIP's width with one distinct random embedding per image: what
// clipcap-data would write, without spending a CLIP forward in every test.
std::string make_dataset(const std::string& tag, int64_t n_train, int64_t n_val,
                         const std::vector<std::string>& captions = kCaptions) {
  const std::string dir = temp_dir(tag) + "/data";
  const std::string clip_dir = fixture("tiny-clip");
  const int64_t dim =
      clipcap::CLIPConfig::from_json(clipcap::read_json(clip_dir + "/config.json"), clip_dir).vision.hidden_size;
  const int64_t n = n_train + n_val;
  torch::manual_seed(7);
  torch::Tensor x = torch::randn({n, dim});  // (N, D)
  clipcap::EmbeddingDatasetWriter w(dir, n, dim, torch::kFloat32);
  std::vector<clipcap::DatasetEntry> entries;
  for (int64_t i = 0; i < n; ++i)
    entries.push_back({"img" + std::to_string(i) + ".png", {captions[i % captions.size()]}, i < n_train ? "train" : "val"});
  w.append(entries, x);
  w.finish({{"clip", {{"dir", clip_dir}, {"config_sha256", clipcap::sha256_hex(clipcap::read_file(clip_dir + "/config.json"))}}},
            {"embedding", {{"kind", "pooler_output"}}}});
  return dir;
}

clipcap::TrainConfig tiny_config() {
  nlohmann::json j = {{"clip_model", fixture("tiny-clip")}, {"text_model", fixture("tiny-gpt2")},
                      {"batch_size_exp", 2}, {"ep_len", 2}, {"num_layers", 1}, {"n_heads", 4},
                      {"forward_expansion", 2}, {"max_len", 16}, {"val_samples", 2}, {"freeze", "full"},
                      {"schedule", "constant"}, {"lr", 1e-2}, {"epochs", 40}, {"dropout", 0.0}};
  return clipcap::TrainConfig::from_json(j, "test config");
}

std::vector<nlohmann::json> read_metrics(const std::string& run) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

clipcap::TrainOptions quiet(clipcap::TrainOptions o) {
  static std::ostringstream sink;
  o.log = &sink;
  o.progress_tty = 0;
  return o;
}

}  // namespace

TEST(LrSchedule, UpstreamTriangleMatchesTheFormulaWithTheRealPeak) {
  // UPSTREAM.md: max_point = int(k*epochs); lr(e) = min(max_lr*e/max_point, max_lr*(e-epochs)/(max_point-epochs)).
  const double max_lr = 3e-3, k = 0.33;
  const int epochs = 150;
  clipcap::LrSchedule s("upstream", max_lr, k, 0.0, epochs, 1);
  const int max_point = static_cast<int>(k * epochs);
  double peak = 0;
  for (int e = 0; e < epochs; ++e) {
    const double want = std::min(max_lr * e / max_point, max_lr * (e - epochs) / double(max_point - epochs));
    EXPECT_NEAR(s.at(e), want, 1e-15) << "epoch index " << e;
    peak = std::max(peak, s.at(e));
  }
  EXPECT_DOUBLE_EQ(peak, max_lr);  // not lr^2 (upstream's LambdaLR bug)
  EXPECT_EQ(s.at(0), 0.0);
  EXPECT_DOUBLE_EQ(s.at(max_point), max_lr);
}

TEST(LrSchedule, PerEpochUnitHoldsTheValueForAWholeEpoch) {
  clipcap::LrSchedule s("upstream", 1.0, 0.5, 0.0, 4, /*unit_steps=*/10);  // 4 epochs of 10 steps
  EXPECT_EQ(s.at(0), 0.0);
  EXPECT_EQ(s.at(9), 0.0);
  EXPECT_DOUBLE_EQ(s.at(10), 0.5);
  EXPECT_DOUBLE_EQ(s.at(20), 1.0);
  EXPECT_DOUBLE_EQ(s.at(35), 0.5);
}

TEST(LrSchedule, CosineAndLinearWarmUpThenDecayToZero) {
  clipcap::LrSchedule c("cosine", 2.0, 0.3, 0.1, 100, 1), l("linear", 2.0, 0.3, 0.1, 100, 1);
  EXPECT_DOUBLE_EQ(c.at(5), 1.0);    // half way through the 10-step warmup
  EXPECT_DOUBLE_EQ(c.at(10), 2.0);   // peak
  EXPECT_NEAR(c.at(55), 1.0, 1e-12); // cosine half way
  EXPECT_NEAR(c.at(100), 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(l.at(55), 1.0);
  EXPECT_DOUBLE_EQ(l.at(10), 2.0);
}

TEST(TrainConfig, ConfigsMirrorUpstreamAndRejectTyposAndBadValues) {
  for (const char* name : {"small.json", "large.json", "emoji-tiny.json"}) {
    const std::string path = std::string(CLIPCAP_SOURCE_DIR) + "/configs/" + name;
    if (!fs::exists(path)) continue;
    auto j = clipcap::read_json(path);
    auto c = clipcap::TrainConfig::from_json(j, path);
    EXPECT_EQ(c.lr, j.value("lr", c.lr)) << name;
  }
  auto small = clipcap::TrainConfig::from_json(clipcap::read_json(std::string(CLIPCAP_SOURCE_DIR) + "/configs/small.json"), "s");
  EXPECT_EQ(small.batch_size(), 64);
  EXPECT_EQ(small.epochs, 150);
  EXPECT_DOUBLE_EQ(small.lr, 3e-3);
  expect_error([] { clipcap::TrainConfig::from_json({{"epohcs", 3}}, "my.json"); }, {"my.json", "unknown field 'epohcs'"});
  expect_error([] { clipcap::TrainConfig::from_json({{"freeze", "most"}}, "my.json"); }, {"my.json", "freeze", "most"});
  expect_error([] { clipcap::TrainConfig::from_json({{"lr", "fast"}}, "my.json"); }, {"my.json", "lr", "wrong type"});
  nlohmann::json j = clipcap::train_config_defaults();
  clipcap::apply_override(j, "epochs=7");
  clipcap::apply_override(j, "decoder.n_layer=5");
  clipcap::apply_override(j, "freeze=mapping-only");
  auto c = clipcap::TrainConfig::from_json(j, "x");
  EXPECT_EQ(c.epochs, 7);
  EXPECT_EQ(c.decoder.n_layer, 5);
  EXPECT_EQ(c.freeze, "mapping-only");
  expect_error([&] { clipcap::apply_override(j, "nonsense"); }, {"key=value"});
}

TEST(CaptionBatches, EosAppendedPaddingIgnoredShuffleDeterministic) {
  auto tok = clipcap::load_tokenizer(fixture("tiny-gpt2"));
  const std::string data = make_dataset("batches", 3, 1);
  clipcap::EmbeddingDataset ds(data);
  clipcap::CaptionTextOptions t;
  t.max_tokens = 5;
  auto ex = clipcap::make_caption_examples(ds, "train", *tok, t);
  ASSERT_EQ(ex.size(), 3u);
  for (const auto& e : ex) {
    EXPECT_EQ(e.tokens.back(), tok->eos_id());
    EXPECT_LE(e.tokens.size(), 5u);
  }
  EXPECT_EQ(clipcap::shuffled_order(50, 1, 3), clipcap::shuffled_order(50, 1, 3));
  EXPECT_NE(clipcap::shuffled_order(50, 1, 3), clipcap::shuffled_order(50, 1, 4));
  auto b = clipcap::collate(ex, {0, 1, 2}, 0, 3, ds.embeddings());
  EXPECT_EQ(b.tokens.size(1), 5);
  EXPECT_EQ(b.n_tokens, 15);
  EXPECT_EQ(clipcap::normalize_caption("  A Dog. \n", {true, true, 40}), "a dog.");
}

TEST(CaptionObjective, LastPrefixSlotPredictsTheFirstTokenAndWpeIsAddedOnce) {
  auto cap = clipcap::Captioner::create(fixture("tiny-clip"), fixture("tiny-gpt2"), [] {
    clipcap::MappingConfig m;
    m.ep_len = 3;
    m.num_layers = 1;
    m.n_heads = 4;
    return m;
  }());
  torch::NoGradGuard no_grad;
  clipcap::CaptionBatch b;
  b.embeds = torch::randn({1, cap.config().mapping.input_size});
  b.tokens = torch::tensor({{464, 3290, 50256}}, torch::kLong);
  b.targets = b.tokens.clone();
  b.n_tokens = 3;
  torch::Tensor got = clipcap::caption_token_losses(cap, b);  // (1, 3)

  // By hand: inputs [prefix (3 rows), wte(464), wte(3290)]; positions 2, 3, 4 predict the 3 tokens.
  torch::Tensor prefix = cap.prefix(b.embeds);  // (1, 3, D)
  torch::Tensor x = torch::cat({prefix, cap.gpt2()->wte->weight.index_select(0, torch::tensor({464, 3290})).unsqueeze(0)}, 1);
  torch::Tensor logits = cap.gpt2()->logits(cap.gpt2()->forward(x));  // (1, 5, V)
  torch::Tensor logp = torch::log_softmax(logits[0], -1);
  for (int t = 0; t < 3; ++t)
    EXPECT_NEAR(got[0][t].item<double>(), -logp[2 + t][b.tokens[0][t].item<int64_t>()].item<double>(), 1e-5) << t;
}

TEST(CaptionObjective, BatchLossEqualsEachImageAlone) {
  auto cap = clipcap::Captioner::create(fixture("tiny-clip"), fixture("tiny-gpt2"), [] {
    clipcap::MappingConfig m;
    m.num_layers = 2;
    m.n_heads = 4;
    return m;
  }());
  auto tok = clipcap::load_tokenizer(fixture("tiny-gpt2"));
  const std::string data = make_dataset("batch-alone", 4, 0);
  clipcap::EmbeddingDataset ds(data);
  auto ex = clipcap::make_caption_examples(ds, "train", *tok, {});
  torch::NoGradGuard no_grad;
  auto all = clipcap::collate(ex, {0, 1, 2, 3}, 0, 4, ds.embeddings());
  torch::Tensor batched = clipcap::caption_token_losses(cap, all);  // (4, T)
  double sum = 0;
  for (size_t i = 0; i < 4; ++i) {
    auto one = clipcap::collate(ex, {0, 1, 2, 3}, i, i + 1, ds.embeddings());
    torch::Tensor alone = clipcap::caption_token_losses(cap, one);  // (1, Ti)
    EXPECT_TRUE(tensors_near(batched[i].slice(0, 0, alone.size(1)), alone[0], 1e-5)) << "image " << i;
    sum += alone.sum().item<double>();
  }
  EXPECT_NEAR(clipcap::caption_loss(cap, all).item<double>(), sum / all.n_tokens, 1e-5);
}

TEST(FreezePolicy, UpstreamTrainsMappingEmbeddingsFirstLastBlockAndLnF) {
  auto cap = clipcap::Captioner::create(fixture("tiny-clip"), fixture("tiny-gpt2"), [] {
    clipcap::MappingConfig m;
    m.num_layers = 1;
    m.n_heads = 4;
    return m;
  }());
  clipcap::apply_freeze_policy(cap, "upstream");
  const int64_t last = cap.gpt2()->config.n_layer - 1;
  for (auto& p : cap.gpt2()->named_parameters()) {
    const std::string& n = p.key();
    const bool want = n.rfind("wte", 0) == 0 || n.rfind("wpe", 0) == 0 || n.rfind("ln_f", 0) == 0 ||
                      n.rfind("h.0.", 0) == 0 || n.rfind("h." + std::to_string(last) + ".", 0) == 0;
    EXPECT_EQ(p.value().requires_grad(), want) << n;
  }
  for (auto& p : cap.vision_model()->parameters()) EXPECT_FALSE(p.requires_grad());
  auto only = clipcap::apply_freeze_policy(cap, "mapping-only");
  EXPECT_EQ(only.size(), cap.mapping()->parameters().size());
  expect_error([&] { clipcap::apply_freeze_policy(cap, "half"); }, {"half"});
}

TEST(Trainer, OverfitsAHandfulOfCaptionsAndTheSavedCheckpointSaysThemBack) {
  torch::set_num_threads(1);
  const std::string data = make_dataset("overfit", 4, 0);
  clipcap::TrainOptions o;
  o.config = tiny_config();
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
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(got[i], kCaptions[i]) << which << " image " << i;
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
  clipcap::TrainConfig cfg = tiny_config();
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
  clipcap::TrainConfig cfg = tiny_config();
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
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(got[i], kCaptions[i]) << "image " << i;
}

TEST(Trainer, BadInputsAreNamed) {
  const std::string data = make_dataset("bad", 2, 0);
  clipcap::TrainOptions o = quiet({});
  o.config = tiny_config();
  o.data_dir = data;
  o.run_dir = temp_dir("bad-run") + "/run";
  o.config.text_model = "/nonexistent/gpt2";
  expect_error([&] { clipcap::train_captioner(o); }, {"/nonexistent/gpt2", "--text-model"});
  o.config = tiny_config();
  o.data_dir = temp_dir("bad-empty");
  expect_error([&] { clipcap::train_captioner(o); }, {o.data_dir});
  o.resume = true;
  o.run_dir = temp_dir("bad-resume");
  expect_error([&] { clipcap::train_captioner(o); }, {o.run_dir, "train_config.json"});
}

TEST(TrainCli, TrainsWithFlagsAndTheModelCaptionsImagesWithClipcapInfer) {
  const std::string data = make_dataset("cli", 4, 1);
  const std::string dir = temp_dir("cli-run"), run_dir = dir + "/run";
  std::ofstream(dir + "/cfg.json") << "{\"_comment\": \"tiny\", \"ep_len\": 2, \"num_layers\": 1, \"n_heads\": 4, "
                                      "\"batch_size_exp\": 2, \"max_len\": 12, \"epochs\": 5}";
  auto r = run(tool("clipcap-train") + " --config " + dir + "/cfg.json --data " + data + " --out " + run_dir +
               " --text-model " + fixture("tiny-gpt2") + " --epochs 2 --freeze full --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("epoch 2/2"), std::string::npos) << r.err;
  EXPECT_EQ(read_metrics(run_dir).size(), 2u);
  auto saved = clipcap::read_json(run_dir + "/train_config.json");
  EXPECT_EQ(saved["config"]["epochs"], 2);
  EXPECT_EQ(saved["config"]["freeze"], "full");
  auto infer = run(tool("clipcap-infer") + " image --model " + run_dir + "/best " + fixture("images/rgb_160x120.png"));
  EXPECT_EQ(infer.exit_code, 0) << infer.err;

  auto typo = run(tool("clipcap-train") + " --config " + dir + "/cfg.json --data " + data + " --out " + dir +
                  "/r2 --set epohcs=3");
  EXPECT_EQ(typo.exit_code, 1);
  EXPECT_NE(typo.err.find("epohcs"), std::string::npos) << typo.err;
  auto resume_conflict = run(tool("clipcap-train") + " --resume " + run_dir + " --epochs 9");
  EXPECT_EQ(resume_conflict.exit_code, 1);
  EXPECT_NE(resume_conflict.err.find("--epochs"), std::string::npos) << resume_conflict.err;

  // --dtype, as every tool takes it: bf16 is the config's bf16 autocast; a dtype training lacks is refused.
  auto bf16 = run(tool("clipcap-train") + " --config " + dir + "/cfg.json --data " + data + " --out " + dir +
                  "/r3 --text-model " + fixture("tiny-gpt2") + " --epochs 1 --threads 1 --dtype bf16");
  ASSERT_EQ(bf16.exit_code, 0) << bf16.err;
  EXPECT_EQ(clipcap::read_json(dir + "/r3/train_config.json")["config"]["autocast"], "bf16");
  auto f16 = run(tool("clipcap-train") + " --config " + dir + "/cfg.json --data " + data + " --out " + dir +
                 "/r4 --dtype f16");
  EXPECT_EQ(f16.exit_code, 1);
  EXPECT_NE(f16.err.find("--dtype f16"), std::string::npos) << f16.err;
  EXPECT_FALSE(fs::exists(dir + "/r4"));
  // A resumed run keeps its own autocast: --dtype there is refused, and the run is left as it was.
  const std::string before = clipcap::read_file(run_dir + "/metrics.jsonl");
  auto resume_dtype = run(tool("clipcap-train") + " --resume " + run_dir + " --dtype bf16");
  EXPECT_EQ(resume_dtype.exit_code, 1);
  EXPECT_NE(resume_dtype.err.find("drop --dtype"), std::string::npos) << resume_dtype.err;
  EXPECT_EQ(clipcap::read_file(run_dir + "/metrics.jsonl"), before);
}

TEST(TrainCli, StopAfterStepsExits130AndResumeFinishes) {
  const std::string data = make_dataset("cli-stop", 8, 1);
  const std::string run_dir = temp_dir("cli-stop-run") + "/run";
  const std::string base = tool("clipcap-train");
  auto r = run("CLIPCAP_TEST_STOP_AFTER_STEPS=1 " + base + " --data " + data + " --out " + run_dir + " --clip-model " +
               fixture("tiny-clip") + " --text-model " + fixture("tiny-gpt2") +
               " --set ep_len=2 --set num_layers=1 --set n_heads=4 --set batch_size_exp=2 --epochs 2 --threads 1");
  EXPECT_EQ(r.exit_code, 130) << r.err;
  EXPECT_NE(r.err.find("--resume " + run_dir), std::string::npos) << r.err;
  auto r2 = run(base + " --resume " + run_dir + " --threads 1");
  EXPECT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(read_metrics(run_dir).size(), 2u);
}

TEST(TrainCli, CtrlCSavesACheckpointExits130AndTheRunResumes) {
  const std::string data = make_dataset("cli-int", 8, 1);
  const std::string run_dir = temp_dir("cli-int-run") + "/run";
  const std::string train = tool("clipcap-train") + " --data " + data + " --clip-model " + fixture("tiny-clip") +
                            " --text-model " + fixture("tiny-gpt2") +
                            " --set ep_len=2 --set num_layers=1 --set n_heads=4 --set batch_size_exp=1 --threads 1";
  // A long run, interrupted once its first epoch is logged: a real SIGINT, as a terminal sends it.
  auto r = run("(" + train + " --out " + run_dir + " --epochs 500 & pid=$!; for i in $(seq 600); do [ -s " + run_dir +
               "/metrics.jsonl ] && break; sleep 0.1; done; kill -INT $pid; wait $pid; echo exit=$?)");
  EXPECT_NE(r.out.find("exit=130"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("interrupted: saving a checkpoint"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(run_dir + "/last/trainer_state.json"));
  EXPECT_TRUE(fs::exists(run_dir + "/best/model.safetensors"));
  EXPECT_FALSE(fs::exists(run_dir + "/last.tmp"));
  const size_t logged = read_metrics(run_dir).size();
  ASSERT_GE(logged, 1u);
  auto infer = run(tool("clipcap-infer") + " image --model " + run_dir + "/last " + fixture("images/rgb_160x120.png"));
  EXPECT_EQ(infer.exit_code, 0) << infer.err;
  // The resumed run goes on from the checkpoint: 9 more steps = two more epochs of 4, then a stop.
  auto again = run("CLIPCAP_TEST_STOP_AFTER_STEPS=9 " + tool("clipcap-train") + " --resume " + run_dir + " --threads 1");
  EXPECT_EQ(again.exit_code, 130) << again.err;
  auto metrics = read_metrics(run_dir);
  ASSERT_GE(metrics.size(), logged + 1) << again.err;
  for (size_t e = 0; e < metrics.size(); ++e) EXPECT_EQ(metrics[e]["epoch"], static_cast<int>(e + 1));
}

TEST(Trainer, Bf16AutocastTrainsAndSavesF32Weights) {
  torch::set_num_threads(1);
  const std::string data = make_dataset("bf16", 4, 0);
  clipcap::TrainOptions o;
  o.config = tiny_config();
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
    o.config = tiny_config();
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
TEST(TrainCli, DataTrainEvalPipelineOnRealImages) {
  const std::string dir = temp_dir("pipeline");
  const std::vector<std::pair<std::string, std::string>> items = {{"rgb_160x120.png", "A red and green square."},
                                                                  {"tiny_rgb_20x13.png", "A wide striped banner."},
                                                                  {"gray_37x53.png", "A gray picture of nothing."},
                                                                  {"rgba_40x40.png", "Two cats sleep on a sofa."}};
  fs::create_directories(dir + "/images");
  std::string jsonl;
  for (const auto& [image, caption] : items) {
    fs::copy_file(fixture("images/" + image), dir + "/images/" + image);
    jsonl += nlohmann::json{{"image", image}, {"caption", caption}, {"split", "train"}}.dump() + "\n";
  }
  std::ofstream(dir + "/captions.jsonl") << jsonl;
  auto data = run(tool("clipcap-data") + " build --format jsonl --split-column split --captions " + dir +
                  "/captions.jsonl --images " + dir + "/images --clip " + fixture("tiny-clip") + " --out " + dir +
                  "/data --threads 1");
  ASSERT_EQ(data.exit_code, 0) << data.err;
  auto train = run(tool("clipcap-train") + " --data " + dir + "/data --out " + dir + "/run --text-model " +
                   fixture("tiny-gpt2") + " --set ep_len=2 --set num_layers=1 --set n_heads=4 --set batch_size_exp=2" +
                   " --freeze full --schedule constant --lr 1e-2 --dropout 0 --epochs 60 --threads 1");
  ASSERT_EQ(train.exit_code, 0) << train.err;
  auto eval = run(tool("clipcap-eval") + " -m " + dir + "/run/best --data " + dir + "/data --split train --out " + dir +
                  "/report --threads 1");
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  auto metrics = clipcap::read_json(dir + "/report/metrics.json");
  EXPECT_EQ(metrics["counts"]["images"], 4);
  EXPECT_NEAR(metrics["metrics"]["BLEU-4"].get<double>(), 1.0, 1e-6)
      << clipcap::read_file(dir + "/report/predictions.jsonl") << train.err;
  const std::string html = clipcap::read_file(dir + "/report/report.html");
  EXPECT_NE(html.find("<svg"), std::string::npos) << "no training curves from the run's metrics.jsonl";
  EXPECT_NE(html.find("Two cats sleep on a sofa."), std::string::npos);
}
