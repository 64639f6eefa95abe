// Helpers shared by the training tests: a small embedding dataset, a tiny training config, the
// run's metrics.jsonl.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

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

}  // namespace clipcap::test
