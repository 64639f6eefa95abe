#include "tests/test_train_support.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/atomic_file.h"
#include "common/json_util.h"
#include "common/sha256.h"
#include "data/embedding_dataset.h"
#include "model/clip.h"
#include "image/image_io.h"
#include "tests/dataset_test_util.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;

namespace clipcap::test {

const std::vector<std::string> kTrainCaptions = {"A dog runs on the grass.", "Two cats sleep on a sofa.",
                                            "A red car in the rain.", "Children play football."};

std::string make_dataset(const std::string& tag, int64_t n_train, int64_t n_val,
                         const std::vector<std::string>& captions) {
  const std::string dir = temp_dir(tag) + "/data";
  const std::string clip_dir = fixture("tiny-clip");
  const int64_t dim =
      CLIPConfig::from_json(read_json(clip_dir + "/config.json"), clip_dir).vision.hidden_size;
  const int64_t n = n_train + n_val;
  torch::manual_seed(7);
  torch::Tensor x = torch::randn({n, dim});  // (N, D)
  EmbeddingDatasetWriter w(dir, n, dim, torch::kFloat32);
  std::vector<DatasetEntry> entries;
  for (int64_t i = 0; i < n; ++i)
    entries.push_back({"img" + std::to_string(i) + ".png", {captions[i % captions.size()]}, i < n_train ? "train" : "val"});
  w.append(entries, x);
  w.finish({{"clip", {{"dir", clip_dir}, {"config_sha256", sha256_hex(read_file(clip_dir + "/config.json"))}}},
            {"embedding", {{"kind", "pooler_output"}}}});
  return dir;
}

TrainConfig tiny_train_config() {
  nlohmann::json j = {{"clip_model", fixture("tiny-clip")}, {"text_model", fixture("tiny-gpt2")},
                      {"batch_size_exp", 2}, {"ep_len", 2}, {"num_layers", 1}, {"n_heads", 4},
                      {"forward_expansion", 2}, {"max_len", 16}, {"val_samples", 2}, {"freeze", "full"},
                      {"schedule", "constant"}, {"lr", 1e-2}, {"epochs", 40}, {"dropout", 0.0}};
  return TrainConfig::from_json(j, "test config");
}

std::vector<nlohmann::json> read_metrics(const std::string& run) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

TrainOptions quiet(TrainOptions o) {
  static std::ostringstream sink;
  o.log = &sink;
  o.progress_tty = 0;
  return o;
}



const std::vector<Shape>& train_shapes() {
  static const std::vector<Shape> s = {
      {"a red image", 220, 30, 30, 0},      {"a green image", 30, 200, 40, 0},  {"a blue image", 30, 40, 220, 0},
      {"a yellow image", 230, 220, 30, 0},  {"a red square", 220, 30, 30, 1},   {"a blue square", 30, 40, 220, 1},
      {"green stripes", 30, 200, 40, 2},    {"black stripes", 10, 10, 10, 2},
  };
  return s;
}

Image draw(const Shape& s, int size) {
  Image img;
  img.width = img.height = size;
  img.pixels.assign(static_cast<size_t>(size) * size * 3, 255);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      bool ink = s.kind == 0 || (s.kind == 1 && x >= size / 4 && x < 3 * size / 4 && y >= size / 4 && y < 3 * size / 4) ||
                 (s.kind == 2 && ((x + y) / 3) % 2 == 0);
      if (!ink) continue;
      uint8_t* p = img.row(y) + 3 * x;
      p[0] = s.r, p[1] = s.g, p[2] = s.b;
    }
  return img;
}

// dir/images/*.png and dir/pairs.jsonl: the train shapes at 20 px (the processor resizes them to
// 16), two val images, and a test image that is not a PNG at all: training must never open it.
std::string make_clip_pairs(const std::string& dir) {
  fs::create_directories(dir + "/images");
  std::string jsonl;
  int i = 0;
  for (const Shape& s : train_shapes()) {
    std::string name = "train_" + std::to_string(i++) + ".png";
    write_png(dir + "/images/" + name, draw(s, 20));
    jsonl += nlohmann::json{{"image", name}, {"caption", s.caption}, {"split", "train"}}.dump() + "\n";
  }
  write_png(dir + "/images/val_0.png", draw({"", 200, 40, 40, 0}, 20));
  write_png(dir + "/images/val_1.png", draw({"", 40, 40, 200, 1}, 20));
  jsonl += R"({"image": "val_0.png", "caption": "a red image", "split": "val"})" "\n";
  jsonl += R"({"image": "val_1.png", "caption": "a blue square", "split": "val"})" "\n";
  write_text(dir + "/images/held_out.png", "not an image: a test image must never be read");
  jsonl += R"({"image": "held_out.png", "caption": "a held-out image", "split": "test"})" "\n";
  write_text(dir + "/pairs.jsonl", jsonl);
  return dir + "/pairs.jsonl";
}

ClipTrainConfig tiny_clip_config() {
  ClipTrainConfig c;
  c.vision.image_size = 16;
  c.vision.patch_size = 4;
  c.vision.hidden_size = 32;
  c.vision.num_hidden_layers = 2;
  c.vision.num_attention_heads = 2;
  c.vision.intermediate_size = 64;
  c.text.hidden_size = 32;
  c.text.num_hidden_layers = 1;
  c.text.num_attention_heads = 2;
  c.text.intermediate_size = 64;
  c.text.max_position_embeddings = 8;
  c.projection_dim = 16;
  c.tokenizer.vocab_size = 560;
  c.training.epochs = 60;  // one step per epoch: 8 pairs, batch 8
  c.training.batch_size = 8;
  c.training.lr = 3e-3;
  c.training.warmup = 0.1;
  c.training.weight_decay = 0.0;
  c.training.shift = 0;
  c.training.seed = 7;
  return c;
}

}  // namespace clipcap::test
