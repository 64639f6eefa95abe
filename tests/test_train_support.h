// Helpers shared by the training tests: a small embedding dataset, a tiny training config, the
// run's metrics.jsonl.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "image/image_io.h"
#include "train/clip_train_config.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace clipcap::test {

extern const std::vector<std::string> kTrainCaptions;

// A dataset of the fixture CLIP's width with one distinct random embedding per image: what
// clipcap-data would write, without spending a CLIP forward in every test.
std::string make_dataset(const std::string& tag, int64_t n_train, int64_t n_val,
                         const std::vector<std::string>& captions = kTrainCaptions);
TrainConfig tiny_train_config();
std::vector<nlohmann::json> read_metrics(const std::string& run);
TrainOptions quiet(TrainOptions o);  // log and progress into a sink

// CLIP pretraining data: eight captioned shapes and colours.
struct Shape {
  const char* caption;
  uint8_t r, g, b;
  int kind;  // 0 solid, 1 centred square on white, 2 diagonal stripes on white
};
const std::vector<Shape>& train_shapes();
Image draw(const Shape& s, int size);
// dir/images/*.png and dir/pairs.jsonl (format jsonl, split column "split"): the train shapes at
// 20 px, two val images, and a test image that is not a PNG at all: training must never open it.
std::string make_clip_pairs(const std::string& dir);
// A CLIP of 16 px images and 32-wide towers: 60 epochs of one step of 8 pairs.
ClipTrainConfig tiny_clip_config();

}  // namespace clipcap::test
