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
//  2. learns a CLIP-format BPE vocabulary on the training captions (train/bpe_trainer.h);
//  3. decodes every train and val image once (threads) and resizes + centre-crops it to image_size
//     with the ImageProcessor whose preprocessor_config.json it writes, so the model is trained on
//     the very pixels clipcap-data will give it; unreadable images are skipped and counted;
//  4. per epoch: each training image once, in a shuffled order, with one of its captions drawn at
//     random, in batches of batch_size (the remainder is dropped); optional random translation
//     (replicated edges); symmetric InfoNCE over the batch with the learnable temperature
//     (logit_scale, initialised to ln(1/0.07) and clamped to [0, ln 100] after each step, as CLIP
//     does). Pairs whose captions tokenise identically count as positives of each other (a batch
//     may hold the same caption drawn for two images). AdamW with weight decay on 2-D+ weights only,
//     linear warmup then cosine decay to 0; weights initialised like HF CLIPPreTrainedModel;
//  5. after each epoch: val loss (batches of batch_size, first caption of each image) and val
//     recall@1 (image -> text among all val pairs; a retrieved caption identical to the image's
//     own counts as a hit), logged as one line;
//     With runtime.dtype bf16 the towers run under CPU bf16 autocast (weights, gradients, loss and
//     optimizer stay f32): ~2.5x faster on CPUs with AVX512-BF16/AMX; the saved weights are f32.
//  6. writes OUT.tmp/ (config.json, model.safetensors, preprocessor_config.json, vocab.json,
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
#include "train/clip_train_config.h"

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

// Image -> text recall@1 over N pairs: pixel_values (N, 3, S, S), texts[i] the ids (bos ... eos) of
// image i's caption. Row i is a hit when its best text has the same ids as texts[i].
double clip_recall_at_1(CLIPModelImpl& model, const torch::Tensor& pixel_values,
                        const std::vector<std::vector<int64_t>>& texts, int64_t batch_size = 256);

}  // namespace clipcap
