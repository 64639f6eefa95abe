// The contrastive objective `clipcap-train clip` trains with, and what the training loop
// (train/training_loop.h) asks of it: each epoch every training image once in a shuffled order,
// one of its captions drawn at random, global batches of batch_size (the remainder dropped; each
// rank of a distributed run takes its block, train/data_parallel.h), optional
// random translation; symmetric InfoNCE over the batch with the learnable temperature (logit_scale,
// clamped to [0, ln 100] after each step, as CLIP does). Pairs whose captions tokenise identically
// count as positives of each other. After each epoch: val loss (first caption of each image) and
// val recall@1 (image -> text among up to 5000 val pairs; a retrieved caption identical to the
// image's own counts as a hit).
//
//   clipcap::ClipTraining objective(*model, processor, train, val, cfg.training, batch, device, bf16, parallel);
//   double r = clipcap::clip_recall_at_1(*model, pixel_values, texts);   // any (image, caption ids) pairs
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "model/clip.h"
#include "train/clip_pairs.h"
#include "train/clip_train_config.h"
#include "train/data_parallel.h"
#include "train/training_loop.h"

namespace clipcap {

// Symmetric InfoNCE of the rows img, txt (n, P) of a batch whose features are img_all, txt_all
// (N, P) (normalised, f32; the same tensors in one process, every rank's rows gathered in a
// distributed run): image -> text and text -> image over the n rows, each against all N columns.
// same (n, N) is 1 where row i's and column j's captions are identical. Over all ranks, the
// n-weighted mean of this is the loss of the whole batch.
torch::Tensor contrastive_loss(const torch::Tensor& img, const torch::Tensor& txt, const torch::Tensor& img_all,
                               const torch::Tensor& txt_all, const torch::Tensor& scale, const torch::Tensor& same);

struct ClipEvaluation {
  double loss = -1, recall_at_1 = -1;  // -1: fewer than 2 pairs
};

// Loss in batches of batch_size and recall@1 over the first max_pairs images of set, each with
// its first caption, no augmentation (eval mode, then back to train mode).
ClipEvaluation evaluate_clip(CLIPModelImpl& m, const ImageProcessor& processor, const PairSet& set, int64_t batch_size,
                             int64_t max_pairs, const torch::Device& device, bool bf16, bool with_loss,
                             DataParallel& parallel = single_process());

// Image -> text recall@1 over N pairs: pixel_values (N, 3, S, S), texts[i] the ids (bos ... eos) of
// image i's caption. Row i is a hit when its best text has the same ids as texts[i].
double clip_recall_at_1(CLIPModelImpl& model, const torch::Tensor& pixel_values,
                        const std::vector<std::vector<int64_t>>& texts, int64_t batch_size = 256);

class ClipTraining : public TrainingObjective {
 public:
  static constexpr int64_t kMaxRecallPairs = 5000;  // val pairs scored per epoch (a (N, N) matrix)

  ClipTraining(CLIPModelImpl& model, const ImageProcessor& processor, const PairSet& train, const PairSet& val,
               const ClipSchedule& schedule, int64_t batch_size, torch::Device device, bool bf16,
               DataParallel& parallel = single_process());

  int64_t batches_per_epoch() const override { return train_.size() / batch_; }
  void start_epoch(int64_t epoch) override;
  BatchLoss loss(int64_t batch) override;
  void after_step() override;
  Validation validate() override;

 private:
  CLIPModelImpl& model_;
  const ImageProcessor& processor_;
  const PairSet& train_;
  const PairSet& val_;
  const ClipSchedule& schedule_;
  const int64_t batch_;     // global
  const int64_t per_rank_;  // this rank's part of it
  const torch::Device device_;
  const bool bf16_;
  DataParallel& parallel_;
  std::mt19937_64 rng_;         // shuffling, caption choice, translation: one stream, seeded once
  std::vector<int64_t> order_;  // this epoch's order of the training images
  std::vector<size_t> caption_;                        // per position of order_: the caption drawn
  std::vector<ImageAugmentation> augmentation_;       // per position: the augmentation drawn
};

}  // namespace clipcap
