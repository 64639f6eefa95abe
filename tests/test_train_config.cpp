// The captioner's training config: upstream's S/L settings by name, typos and bad values rejected.
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
#include "train/train_config.h"

namespace fs = std::filesystem;
using namespace clipcap::test;

TEST(TrainConfig, ConfigsMirrorUpstreamAndRejectTyposAndBadValues) {
  for (const char* name : {"small.json", "large.json", "emoji-tiny.json"}) {
    const std::string path = source_path(std::string("configs/") + name);
    if (!fs::exists(path)) continue;
    auto j = clipcap::read_json(path);
    auto c = clipcap::TrainConfig::from_json(j, path);
    EXPECT_EQ(c.lr, j.value("lr", c.lr)) << name;
  }
  auto small = clipcap::TrainConfig::from_json(clipcap::read_json(source_path("configs/small.json")), "s");
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
