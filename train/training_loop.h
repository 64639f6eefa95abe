// The one training loop both trainers run (the captioner's, train/trainer.h, and the CLIP's,
// train/clip_trainer.h): epochs of micro-batches, gradient accumulation, the learning-rate
// schedule, gradient clipping and the optimizer step; after each epoch validation, one log line,
// the epoch's record, keep-best and checkpoints; a stop request ends it at the next step with the
// position saved. What differs between the trainers, the batches and the objective, comes in
// through TrainingObjective.
//
//   clipcap::TrainingLoop loop(objective, *optimizer, params, schedule, loop_options, hooks, log);
//   clipcap::TrainerState state;                  // or a checkpoint's (load_trainer_state)
//   bool finished = loop.run(state);              // false: stopped; hooks.save_checkpoint saved it
//
// Where distributed training plugs in, one function each (train/data_parallel.h): the gradient
// reduction after backward, the sampler's share of an epoch, and which process writes.
//
// The log line, one per epoch:
//   epoch 3/20 | step 120/400 | train loss 1.2345 | val loss 1.3456 | val r@1 0.812 | lr 1.00e-03 |
//   5120 tok/s | 1m2s | eta 5m10s | "a sample caption"
// and with log_every N, one per N optimizer steps (above the progress line on a terminal):
//   step 200 | epoch 2 | lr 9.800e-04 | loss 1.2873 | 5230 tok/s
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/progress.h"
#include "train/data_parallel.h"
#include "train/lr_schedule.h"
#include "train/trainer_state.h"

namespace torch::optim {
class Optimizer;
}

namespace clipcap {

// One micro-batch's loss: the mean over its examples (a scalar with its graph), and what it counts
// for in the epoch's mean train loss (target tokens, pairs).
struct BatchLoss {
  torch::Tensor loss;
  int64_t weight = 1;
};

// A number the objective reports after each epoch: recorded under `key`, shown in the log line as
// "<label> <value>" (3 decimals).
struct EpochMetric {
  std::string key, label;
  double value = 0;
};

// After each epoch. record holds more for the epoch's record only (sample captions); note ends the
// log line.
struct Validation {
  double loss = std::numeric_limits<double>::quiet_NaN();  // NaN: no validation split
  std::vector<EpochMetric> metrics;                         // e.g. {"val_recall_at_1", "val r@1", 0.81}
  nlohmann::json record = nlohmann::json::object();
  std::string note;
};

class TrainingObjective {
 public:
  virtual ~TrainingObjective() = default;
  virtual int64_t batches_per_epoch() const = 0;           // micro-batches
  virtual void start_epoch(int64_t epoch) = 0;             // 0-based: this epoch's order; train mode
  virtual BatchLoss loss(int64_t batch) = 0;               // forward of micro-batch `batch` of the epoch
  virtual void after_step() {}                             // after each optimizer step
  virtual Validation validate() = 0;                       // after each epoch (eval mode, then back)
};

struct TrainingLoopOptions {
  int64_t epochs = 1;
  int64_t grad_accum = 1;       // micro-batches per optimizer step
  double grad_clip = 0;         // max L2 norm of the gradients (0 = off)
  int64_t save_every = 1;       // epochs between checkpoints (the last epoch and a stop always save)
  std::string rate_key = "tokens_per_s";  // the epoch record's throughput field: BatchLoss weight per second
  std::string rate_label = "tok/s";
  int64_t log_every = 0;        // optimizer steps between step records and log lines (0 = none)
  ProgressOptions progress;     // the per-epoch progress line (unit "batch")
};

// What the run does with its results; every hook may be empty.
struct TrainingHooks {
  std::function<bool()> stop_requested;                        // checked after each optimizer step
  std::function<void(const TrainerState&)> save_checkpoint;    // at the cadence, at the end, on a stop
  std::function<void()> save_best;                             // the validation loss improved
  std::function<void(const nlohmann::json&)> record_epoch;     // the epoch's record (metrics.jsonl)
  // Every log_every steps: {"step", "epoch", "lr", "loss", rate_key} (steps.jsonl): the lr the
  // step used, its loss over the global batch, and the rate since the previous step record.
  std::function<void(const nlohmann::json&)> record_step;
};

class TrainingLoop {
 public:
  TrainingLoop(TrainingObjective& objective, torch::optim::Optimizer& optimizer, std::vector<torch::Tensor> params,
               LrSchedule schedule, TrainingLoopOptions opts, TrainingHooks hooks, std::ostream& log,
               DataParallel& parallel = single_process());

  // Trains from `state` to the last epoch (true) or to a stop request (false, checkpoint saved).
  // Error when the loss is not finite.
  bool run(TrainerState& state);

  int64_t steps_per_epoch() const;
  int64_t total_steps() const { return steps_per_epoch() * opts_.epochs; }
  // The record of the last epoch finished in this run (null before the first).
  const nlohmann::json& last_epoch() const { return last_epoch_; }

 private:
  void finish_epoch(TrainerState& state);
  std::string log_line(const TrainerState& st, double train_loss, const Validation& v, double lr, double rate) const;
  std::string step_line(const nlohmann::json& step_record) const;

  TrainingObjective& objective_;
  torch::optim::Optimizer& optimizer_;
  std::vector<torch::Tensor> params_;
  LrSchedule schedule_;
  TrainingLoopOptions opts_;
  TrainingHooks hooks_;
  std::ostream& log_;
  DataParallel& parallel_;
  nlohmann::json last_epoch_;
};

}  // namespace clipcap
