#include "tests/test_train_support.h"

#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "common/atomic_file.h"
#include "common/json_util.h"
#include "common/sha256.h"
#include "data/embedding_dataset.h"
#include "model/clip.h"
#include "tests/test_support.h"

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


}  // namespace clipcap::test
