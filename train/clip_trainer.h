// Contrastive CLIP pretraining from scratch on image/caption pairs: what `clipcap-train clip` runs.
//
//   clipcap::ClipTrainOptions opts;
//   opts.captions = ".cache/emoji/dataset/dataset_emoji.json";  opts.source.format = "karpathy";
//   opts.images = ".cache/emoji/dataset/images";
//   opts.config = clipcap::ClipTrainConfig::load("configs/clip-emoji-tiny.json");
//   opts.out = "models/clip-emoji";
//   clipcap::ClipTrainResult r = clipcap::train_clip(opts);   // r.epochs.back().val_recall_at_1
//   auto clip = clipcap::load_clip("models/clip-emoji");       // what clipcap-data build reads
//
// What it does, in order:
//  1. reads the caption source and splits it by image exactly as `clipcap-data build` does with the
//     same --format/--seed/--train/--val (data/dataset_sources.h, data/dataset_split.h): it fits on
//     the train split only, reports on val, and never opens the test images;
//  2. decodes every train and val image once (threads) and resizes + centre-crops it to image_size
//     with the ImageProcessor whose preprocessor_config.json it writes, so the model is trained on
//     the very pixels clipcap-data will give it; unreadable images are skipped and counted
//     (train/clip_pairs.h);
//  3. learns a CLIP-format BPE vocabulary on the captions of the images that could be read
//     (train/bpe_trainer.h);
//  4. trains with the training loop (train/training_loop.h) on the contrastive objective
//     (train/clip_objective.h): AdamW with weight decay on 2-D+ weights only, linear warmup then
//     cosine decay to 0 (train/lr_schedule.h), weights initialised like HF CLIPPreTrainedModel;
//     one log line per epoch with val loss and val recall@1. With runtime.dtype bf16 the towers run
//     under CPU bf16 autocast (weights, gradients, loss and optimizer stay f32); the saved weights
//     are f32;
//  5. writes OUT.tmp/ (config.json, model.safetensors, preprocessor_config.json, vocab.json,
//     merges.txt, tokenizer_config.json, special_tokens_map.json, training.json) and renames it to
//     OUT: OUT only appears complete. There is no resume: an interrupted run leaves OUT.tmp, which
//     the next run deletes.
#pragma once

#include <torch/types.h>

#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "common/progress.h"
#include "common/runtime.h"
#include "data/dataset_sources.h"
#include "data/dataset_split.h"
#include "model/clip.h"
#include "train/clip_objective.h"
#include "train/clip_train_config.h"
#include "train/data_parallel.h"

namespace clipcap {

struct ClipTrainOptions {
  std::string captions;             // captions file (results.csv, dataset_*.json, captions_*.json, .jsonl, .csv)
  std::string images;               // root the captions' image paths are relative to
  std::string out;                  // output HF CLIP directory
  SourceOptions source;             // --format and its column options
  SplitOptions split;               // --seed --train --val: the same split as clipcap-data build
  ClipTrainConfig config;           // architecture, tokenizer, schedule
  RuntimeOptions runtime;           // threads (also decode workers), device; dtype f32 or bf16 (CPU autocast)
  bool overwrite = false;           // replace an existing OUT
  const std::atomic<bool>* stop = nullptr;  // becomes true: stop after the current step, write nothing
  ProgressOptions progress;         // the progress line (unit "batch")
  std::ostream* log = nullptr;      // per-epoch lines and notes; nullptr: std::cerr
  DataParallel* parallel = nullptr; // the ranks of a distributed run (train/distributed.h); nullptr: one process
};

struct ClipEpochStats {
  int64_t epoch = 0;            // 1-based
  int64_t step = 0;             // steps done at the end of the epoch
  double train_loss = 0;        // mean over the epoch's steps
  double val_loss = -1;         // -1 when there is no val split
  double val_recall_at_1 = -1;  // -1 when there is no val split
  double logit_scale = 0;       // exp(logit_scale): the temperature's inverse
  double lr = 0;                // at the epoch's last step
  double seconds = 0;           // since training started
};

struct ClipTrainResult {
  bool finished = false;  // false: stopped; nothing was written
  std::string out;
  int64_t train_images = 0, train_captions = 0, val_images = 0, skipped_images = 0;
  int64_t steps = 0, vocab_size = 0;
  double train_recall_at_1 = 0;  // on up to 2048 training pairs (first caption), after training
  double preprocess_seconds = 0, train_seconds = 0;
  std::vector<ClipEpochStats> epochs;
  CLIPModel model{nullptr};  // the trained model (CPU, eval mode)
};

ClipTrainResult train_clip(const ClipTrainOptions& opts);

// HF CLIPPreTrainedModel._init_weights with initializer_factor 1 and initializer_range 0.02, and
// logit_scale = ln(1/0.07). Uses torch's global generator (seed it first).
void init_clip_weights(CLIPModelImpl& model);

}  // namespace clipcap
