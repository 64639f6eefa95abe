// CLIP pretraining (train/clip_trainer.h): a tiny model learns tiny generated pairs, the directory it
// writes loads back (load_clip, ClipBpeTokenizer, ImageProcessor) and feeds clipcap-data build, and
// bad input gets a one-line error naming the file.
#include <gtest/gtest.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "common/atomic_file.h"
#include "common/json_util.h"
#include "image/image_io.h"
#include "model/tokenizers/clip_tokenizer.h"
#include "model/image_processor.h"
#include "model/weights/safetensors.h"
#include "tests/dataset_test_util.h"
#include "tests/test_support.h"
#include "tests/test_train_support.h"
#include "train/clip_trainer.h"

namespace fs = std::filesystem;
using namespace clipcap;
using namespace clipcap::test;

namespace {

ClipTrainOptions tiny_options(const std::string& dir, std::ostringstream& log) {
  ClipTrainOptions o;
  o.captions = dir + "/pairs.jsonl";
  o.images = dir + "/images";
  o.out = dir + "/clip";
  o.source.format = "jsonl";
  o.source.split_column = "split";
  o.config = tiny_clip_config();
  o.runtime.threads = 1;
  o.log = &log;
  o.progress.out = &log;
  o.progress.tty = 0;
  return o;
}

// One training run shared by the tests that only read its results, made once per build: the pairs,
// the trained directory (clip/, with its training.json), the log, and what the model in memory gave
// for the training images (to compare with the saved directory).
struct Trained {
  std::string dir;
  nlohmann::json training;  // clip/training.json
  std::string log;
};

torch::Tensor train_pixels(const ImageProcessor& proc, const std::string& dir);

const Trained& trained() {
  static const Trained t = [] {
    Trained r;
    r.dir = cached_dir("clip-train", [](const std::string& dir) {
      make_clip_pairs(dir);
      std::ostringstream log;
      torch::set_num_threads(1);
      ClipTrainResult res = train_clip(tiny_options(dir, log));
      write_text(dir + "/log.txt", log.str());
      ASSERT_TRUE(res.finished) << log.str();
      torch::NoGradGuard no_grad;
      torch::Tensor px = train_pixels(ImageProcessor::from_dir(dir + "/clip"), dir);
      save_safetensors(dir + "/in_memory.safetensors",
                       {{"image_embeds", res.model->image_embeds(res.model->vision_model->forward(px).pooler_output)}});
    });
    r.training = read_json(r.dir + "/clip/training.json");
    r.log = read_file(r.dir + "/log.txt");
    return r;
  }();
  return t;
}

torch::Tensor train_pixels(const ImageProcessor& proc, const std::string& dir) {
  std::vector<Image> imgs;
  for (size_t i = 0; i < train_shapes().size(); ++i)
    imgs.push_back(read_image(dir + "/images/train_" + std::to_string(i) + ".png"));
  return proc.preprocess_batch(imgs);  // (8, 3, 16, 16)
}

}  // namespace

TEST(ClipTrain, LossFallsAndTrainingPairsAreRetrieved) {
  const Trained& t = trained();
  const nlohmann::json& tj = t.training;
  EXPECT_EQ(tj["data"]["train_images"], 8);
  EXPECT_EQ(tj["data"]["val_images"], 2);
  EXPECT_EQ(tj["data"]["skipped_images"], 0) << "the test split's unreadable image was opened";
  const nlohmann::json& epochs = tj["epochs"];
  ASSERT_EQ(epochs.size(), 60u);
  const double first = epochs.front()["train_loss"], last = epochs.back()["train_loss"];
  EXPECT_GT(first, 0.75 * std::log(8.0));  // random init: no better than chance
  EXPECT_LT(last, 0.3) << t.log;
  EXPECT_LT(last, 0.15 * first) << t.log;
  EXPECT_EQ(tj["final"]["train_recall_at_1"], 1.0) << t.log;
  EXPECT_GE(epochs.back()["val_recall_at_1"].get<double>(), 0.0);
  EXPECT_GT(epochs.back()["logit_scale"].get<double>(), 1.0 / 0.07 - 1e-3);  // it learns to sharpen
  EXPECT_LE(epochs.back()["logit_scale"].get<double>(), 100.0 + 1e-3);        // CLIP's clamp
  EXPECT_NE(t.log.find("epoch 60/60 | step 60/60 | train loss "), std::string::npos) << t.log;
  EXPECT_NE(t.log.find(" | val r@1 "), std::string::npos) << t.log;
  EXPECT_NE(t.log.find(" | scale "), std::string::npos) << t.log;
}

TEST(ClipTrain, SavedDirectoryLoadsAndGivesTheSameEmbeddings) {
  const Trained& t = trained();
  const std::string out = t.dir + "/clip";
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  for (const char* f : {"config.json", "model.safetensors", "preprocessor_config.json", "vocab.json", "merges.txt",
                        "tokenizer_config.json", "special_tokens_map.json", "training.json"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;

  nlohmann::json cfg = read_json(out + "/config.json");
  EXPECT_EQ(cfg["model_type"], "clip");
  EXPECT_EQ(cfg["vision_config"]["image_size"], 16);
  CLIPModel loaded = load_clip(out);
  ImageProcessor proc = ImageProcessor::from_dir(out);
  EXPECT_EQ(proc.config().crop_height, 16);
  EXPECT_EQ(proc.config().shortest_edge, 16);

  torch::NoGradGuard no_grad;
  torch::Tensor px = train_pixels(proc, t.dir);
  torch::Tensor want = load_safetensors(t.dir + "/in_memory.safetensors").at("image_embeds");
  torch::Tensor got = loaded->image_embeds(loaded->vision_model->forward(px).pooler_output);
  EXPECT_TENSOR_NEAR(got, want, 1e-5);

  auto tok = ClipBpeTokenizer::from_dir(out);
  EXPECT_EQ(tok->bos_id(), cfg["text_config"]["bos_token_id"].get<int64_t>());
  EXPECT_EQ(tok->eos_id(), cfg["text_config"]["eos_token_id"].get<int64_t>());
  EXPECT_EQ(tok->pad_id(), cfg["text_config"]["pad_token_id"].get<int64_t>());
  EXPECT_EQ(tok->vocab_size(), cfg["text_config"]["vocab_size"].get<int64_t>());
  std::vector<std::vector<int64_t>> texts;
  for (const Shape& s : train_shapes()) texts.push_back(tok->encode(s.caption));
  EXPECT_EQ(clip_recall_at_1(*loaded, px, texts), 1.0);

  const nlohmann::json& tj = t.training;
  EXPECT_EQ(tj["steps"], 60);
  EXPECT_EQ(tj["final"]["train_recall_at_1"], 1.0);
  EXPECT_TRUE(tj["final"]["val_recall_at_1"].is_number());
  EXPECT_EQ(tj["config"]["training"]["epochs"], 60);
  EXPECT_EQ(tj["epochs"].size(), 60u);
}

TEST(ClipTrain, ClipcapDataBuildAcceptsTheTrainedModel) {
  const Trained& t = trained();
  const std::string ds = temp_dir("clip-dataset") + "/dataset";
  RunResult r = run(tool("clipcap-data") + " build --format jsonl --split-column split --captions " + t.dir +
                    "/pairs.jsonl --images " + t.dir + "/images --clip " + t.dir + "/clip --out " + ds +
                    " --embedding image_embeds --threads 1 --workers 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(ds + "/meta.json"));
  auto emb = load_safetensors(ds + "/embeddings.safetensors").at("image_embeds");
  EXPECT_EQ(emb.size(0), 10);  // 8 train + 2 val; the test image is a bad item
  EXPECT_EQ(emb.size(1), 16);
}

TEST(ClipTrain, SameSeedSameWeights) {
  const Trained& t = trained();
  std::string dir = temp_dir("clip-train-again");
  make_clip_pairs(dir);
  std::ostringstream log;
  ClipTrainOptions o = tiny_options(dir, log);
  o.config.training.epochs = 60;
  ClipTrainResult again = train_clip(o);
  ASSERT_TRUE(again.finished);
  EXPECT_EQ(read_file(dir + "/clip/vocab.json"), read_file(t.dir + "/clip/vocab.json"));
  EXPECT_EQ(read_file(dir + "/clip/merges.txt"), read_file(t.dir + "/clip/merges.txt"));
  EXPECT_EQ(read_file(dir + "/clip/model.safetensors"), read_file(t.dir + "/clip/model.safetensors"));
  EXPECT_EQ(again.epochs.back().train_loss, t.training["epochs"].back()["train_loss"].get<double>());
}

TEST(ClipTrain, Bf16AutocastTrainsTooAndSavesF32) {
  std::string dir = temp_dir("clip-bf16");
  make_clip_pairs(dir);
  std::ostringstream log;
  ClipTrainOptions o = tiny_options(dir, log);
  o.runtime.dtype = "bf16";
  ClipTrainResult r = train_clip(o);
  ASSERT_TRUE(r.finished);
  EXPECT_LT(r.epochs.back().train_loss, 0.15 * r.epochs.front().train_loss) << log.str();
  EXPECT_EQ(r.train_recall_at_1, 1.0) << log.str();
  SafetensorsFile f(dir + "/clip/model.safetensors");
  EXPECT_EQ(f.entry("visual_projection.weight").dtype, "F32");
  EXPECT_EQ(read_json(dir + "/clip/training.json")["dtype"], "bf16 autocast");
  EXPECT_FALSE(at::autocast::is_cpu_enabled());  // the process's autocast state is restored
}

TEST(ClipTrain, InitialisesLikeHfClip) {
  ClipTrainConfig cfg = ClipTrainConfig::load(source_path("configs/clip-emoji-tiny.json"));
  torch::manual_seed(1);
  CLIPModel m(cfg.clip_config(cfg.tokenizer.vocab_size, cfg.tokenizer.vocab_size - 2, cfg.tokenizer.vocab_size - 1));
  init_clip_weights(*m);
  EXPECT_FLOAT_EQ(m->logit_scale.item<float>(), static_cast<float>(std::log(1 / 0.07)));
  const auto& layer = m->vision_model->encoder->layers->children()[0]->as<CLIPEncoderLayerImpl>();
  const double d = static_cast<double>(cfg.vision.hidden_size), L = static_cast<double>(cfg.vision.num_hidden_layers);
  EXPECT_NEAR(layer->self_attn->q_proj->weight.std().item<double>(), std::pow(d, -0.5) * std::pow(2 * L, -0.5), 0.003);
  EXPECT_NEAR(layer->mlp->fc1->weight.std().item<double>(), std::pow(2 * d, -0.5), 0.003);
  EXPECT_EQ(layer->self_attn->q_proj->bias.abs().max().item<float>(), 0.0f);
  EXPECT_EQ(layer->layer_norm1->weight.min().item<float>(), 1.0f);
  EXPECT_NEAR(m->text_model->embeddings->token_embedding->weight.std().item<double>(), 0.02, 0.001);
}

TEST(ClipTrain, EmojiConfigRoundTripsAndFlagsAreValidated) {
  const std::string path = source_path("configs/clip-emoji-tiny.json");
  ClipTrainConfig c = ClipTrainConfig::load(path);
  EXPECT_EQ(ClipTrainConfig::from_json(c.to_json(), "round trip").to_json(), c.to_json());
  c.training.batch_size = 1;
  expect_error([&] { c.validate("--batch-size"); }, {"--batch-size", "training.batch_size"});
}

TEST(ClipTrain, BadConfigFilesNameTheFileAndField) {
  std::string dir = temp_dir("clip-bad-config");
  auto check = [&](const std::string& name, const std::string& text, std::initializer_list<std::string> parts) {
    write_text(dir + "/" + name, text);
    std::vector<std::string> all = {dir + "/" + name};
    all.insert(all.end(), parts.begin(), parts.end());
    const std::string msg = error_message([&] { ClipTrainConfig::load(dir + "/" + name); });
    for (const auto& p : all) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  };
  check("typo.json", R"({"training": {"epoch": 3}})", {"training", "unknown field 'epoch'"});
  check("type.json", R"({"vision": {"patch_size": "8"}})", {"vision", "patch_size", "wrong type"});
  check("heads.json", R"({"text": {"hidden_size": 100, "num_attention_heads": 3}})", {"text.hidden_size", "divisible"});
  check("patch.json", R"({"vision": {"image_size": 30, "patch_size": 8}})", {"vision.image_size", "multiple"});
  check("tokenizer.json", R"({"tokenizer": {"vocab_size": 10}})", {"vocab_size"});
  check("syntax.json", R"({"training": )", {});
  check("blur.json", R"({"training": {"blur": 1.5}})", {"training.blur", "probability"});
  check("scale.json", R"({"training": {"scale": -0.1}})", {"training.scale"});
  expect_error([&] { ClipTrainConfig::load(dir + "/none.json"); }, {dir + "/none.json"});
}

TEST(ClipTrain, BadInputsAreOneLineErrorsNamingTheFile) {
  std::string dir = temp_dir("clip-bad-input");
  make_clip_pairs(dir);
  std::ostringstream log;

  ClipTrainOptions missing = tiny_options(dir, log);
  missing.captions = dir + "/nope.jsonl";
  expect_error([&] { train_clip(missing); }, {dir + "/nope.jsonl"});

  write_text(dir + "/val_only.jsonl", R"({"image": "train_0.png", "caption": "a red image", "split": "val"})" "\n");
  ClipTrainOptions none = tiny_options(dir, log);
  none.captions = dir + "/val_only.jsonl";
  expect_error([&] { train_clip(none); }, {dir + "/val_only.jsonl", "0 training image"});

  write_text(dir + "/empty.jsonl", "");
  ClipTrainOptions empty = tiny_options(dir, log);
  empty.captions = dir + "/empty.jsonl";
  expect_error([&] { train_clip(empty); }, {dir + "/empty.jsonl", "no usable caption rows"});

  write_text(dir + "/unreadable.jsonl", R"({"image": "held_out.png", "caption": "x", "split": "train"})" "\n"
                                        R"({"image": "missing.png", "caption": "y", "split": "train"})" "\n");
  ClipTrainOptions unreadable = tiny_options(dir, log);
  unreadable.captions = dir + "/unreadable.jsonl";
  expect_error([&] { train_clip(unreadable); }, {dir + "/unreadable.jsonl", "could be read", "held_out.png"});

  ClipTrainOptions f16 = tiny_options(dir, log);
  f16.runtime.dtype = "f16";
  expect_error([&] { train_clip(f16); }, {"--dtype f16", "f32", "bf16"});

  fs::create_directories(dir + "/taken");
  write_text(dir + "/taken/something", "x");
  ClipTrainOptions taken = tiny_options(dir, log);
  taken.out = dir + "/taken";
  expect_error([&] { train_clip(taken); }, {dir + "/taken", "--overwrite"});
  EXPECT_TRUE(fs::exists(dir + "/taken/something"));
}

TEST(ClipTrain, AStoppedRunLeavesNothingThatLooksComplete) {
  std::string dir = temp_dir("clip-stop");
  make_clip_pairs(dir);
  fs::create_directories(dir + "/clip.tmp");
  write_text(dir + "/clip.tmp/config.json", "{}");  // a killed run's leftovers
  std::ostringstream log;
  ClipTrainOptions o = tiny_options(dir, log);
  std::atomic<bool> stop{true};
  o.stop = &stop;
  ClipTrainResult r = train_clip(o);
  EXPECT_FALSE(r.finished);
  EXPECT_FALSE(fs::exists(dir + "/clip"));
  EXPECT_FALSE(fs::exists(dir + "/clip.tmp"));
}

// The real executable.
TEST(ClipTrain, ClipcapTrainClipEndToEnd) {
  std::string dir = temp_dir("clip-cli");
  make_clip_pairs(dir);
  const std::string cfg = dir + "/tiny.json";
  nlohmann::json j = tiny_clip_config().to_json();
  write_json_atomic(cfg, j);
  const std::string base = tool("clipcap-train") + " clip --format jsonl --split-column split --captions " + dir +
                           "/pairs.jsonl --images " + dir + "/images --config " + cfg + " --threads 1 --out " + dir + "/clip";
  RunResult r = run(base + " --epochs 40");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("epoch 40/40"), std::string::npos) << r.err;
  EXPECT_EQ(read_json(dir + "/clip/training.json")["steps"], 40);
  CLIPModel loaded = load_clip(dir + "/clip");
  EXPECT_EQ(loaded->config.projection_dim, 16);

  RunResult again = run(base + " --epochs 2");  // OUT exists
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("--overwrite"), std::string::npos) << again.err;
  RunResult bad = run(base + " --batch-size 1 --overwrite");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("training.batch_size"), std::string::npos) << bad.err;
  RunResult help = run(tool("clipcap-train") + " clip --help");
  EXPECT_NE(help.out.find("no resume"), std::string::npos) << help.out;
}
