// What clipcap-train left in a run directory, for the evaluation report.
//
//   clipcap::TrainingLog log = clipcap::read_training_log("runs/small");   // or find_run_dir(model)
//   for (const auto& e : log.epochs) e.epoch, e.train_loss, e.val_loss (NaN when null), e.lr
//
// RUN_DIR/metrics.jsonl: one object per epoch {"epoch", "step", "train_loss", "val_loss" (number or
// null), "lr", "tokens_per_s", "elapsed_s", "samples"}; RUN_DIR/train_config.json: the resolved
// training config. Either may be missing (the report then leaves that part out); a line that is
// not valid JSON is an error naming the file and line.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace clipcap {

struct EpochRecord {
  int64_t epoch = 0;
  int64_t step = 0;
  double train_loss = 0;
  double val_loss = 0;  // NaN when the run had no validation
  double lr = 0;
};

struct TrainingLog {
  std::string run_dir;
  std::vector<EpochRecord> epochs;  // empty when there is no metrics.jsonl
  nlohmann::json train_config;      // null when there is no train_config.json
  bool empty() const { return epochs.empty() && train_config.is_null(); }
};

TrainingLog read_training_log(const std::string& run_dir);

// The run directory of a model directory written by clipcap-train (RUN_DIR/best, RUN_DIR/last):
// its parent when that holds metrics.jsonl or train_config.json; nothing otherwise.
std::optional<std::string> find_run_dir(const std::string& model_dir);

}  // namespace clipcap
