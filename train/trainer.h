// Training the prefix captioner on a clipcap-data embedding dataset.
//
//   clipcap::TrainOptions opts;
//   opts.config = clipcap::TrainConfig::from_json(clipcap::read_json("configs/small.json"), "configs/small.json");
//   opts.data_dir = "data/flickr30k";  opts.run_dir = "runs/small";
//   clipcap::TrainResult r = clipcap::train_captioner(opts);      // r.finished false: interrupted
//
// The run directory:
//   train_config.json   the resolved config, the data directory and the CLIP / GPT-2 directories used
//   metrics.jsonl       one line per epoch: epoch, step, train_loss, val_loss (null without a val
//                       split), lr, tokens_per_s, elapsed_s, samples [{image, caption, reference}]
//   last/               native model directory (Captioner::load) + trainer state (trainer_state.h),
//                       every save_every epochs, at the end, and when interrupted (mid-epoch)
//   best/               native model directory with the lowest val loss so far
//   tokenizer/          the SentencePiece model of a from-scratch decoder
// Both checkpoints are replaced atomically (Captioner::save). A resumed run (resume = true) reads
// train_config.json and last/, and logs the same losses an uninterrupted run would (one thread).
// Distributed (opts.parallel, train/distributed.h): rank 0 sets the run directory up and writes
// everything; every rank reads it (a shared path), takes its block of each global batch, and may
// resume a checkpoint written with another number of ranks.
#pragma once

#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include "train/data_parallel.h"
#include "train/train_config.h"

namespace clipcap {

struct TrainOptions {
  TrainConfig config;               // ignored with resume: the run's own train_config.json wins
  std::string data_dir;             // clipcap-data output (ignored with resume)
  std::string run_dir;
  bool resume = false;
  const std::atomic<bool>* stop = nullptr;  // becomes true: checkpoint at the next step, return
  std::optional<int64_t> log_every;  // --resume: the step log's interval (the run's config otherwise)
  int64_t stop_after_steps = -1;    // tests: act as if interrupted after this many steps of this session
  int step_delay_ms = 0;            // tests: a pause after each step, so a run lasts long enough to be killed
  std::ostream* log = nullptr;      // per-epoch lines and progress (nullptr: std::cerr)
  int progress_tty = -1;            // -1: isatty decides (tests force 0)
  DataParallel* parallel = nullptr; // the ranks of a distributed run (train/distributed.h); nullptr: one process
};

struct TrainResult {
  bool finished = false;  // false: interrupted; last/ holds the position to resume from
  int64_t epochs_done = 0, steps_done = 0;
  double train_loss = 0, val_loss = 0, best_val_loss = 0;  // of the last finished epoch (NaN: none)
};

TrainResult train_captioner(const TrainOptions& opts);

}  // namespace clipcap
