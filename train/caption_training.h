// What the training loop (train/training_loop.h) trains a captioner on: the caption examples of an
// embedding dataset in a seeded order per epoch, their loss (train/caption_objective.h, under bf16
// autocast when asked), and after each epoch the val loss and a few val images captioned.
//
//   clipcap::CaptionTraining objective(captioner, ds, cfg, trainable_decoder);
//   clipcap::TrainingLoop loop(objective, optimizer, params, schedule, opts, hooks, log);
#pragma once

#include <torch/types.h>

#include <vector>

#include "train/caption_batches.h"
#include "train/data_parallel.h"
#include "train/train_config.h"
#include "train/training_loop.h"

namespace clipcap {

class Captioner;
class EmbeddingDataset;

CaptionTextOptions caption_text_options(const TrainConfig& cfg);

class CaptionTraining : public TrainingObjective {
 public:
  // train_decoder: GPT-2 in train mode (dropout) while training; false with the mapping-only policy.
  CaptionTraining(Captioner& captioner, const EmbeddingDataset& ds, const TrainConfig& cfg, bool train_decoder,
                  DataParallel& parallel = single_process());

  int64_t batches_per_epoch() const override;
  void start_epoch(int64_t epoch) override;
  BatchLoss loss(int64_t batch) override;
  Validation validate() override;

 private:
  Captioner& cap_;
  const EmbeddingDataset& ds_;
  const TrainConfig& cfg_;
  const bool train_decoder_;
  DataParallel& parallel_;
  const int64_t per_rank_;  // examples of a global batch each rank takes
  const torch::Tensor embeddings_;  // (N, Dc) float32
  std::vector<CaptionExample> train_, val_;
  std::vector<int64_t> sample_rows_;  // val images captioned after each epoch
  std::vector<int64_t> order_;        // this epoch's order of train_
  int64_t epoch_ = 0;
};

}  // namespace clipcap
