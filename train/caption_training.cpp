#include "train/caption_training.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "common/error.h"
#include "data/embedding_dataset.h"
#include "model/captioner.h"
#include "train/bf16_autocast.h"
#include "train/caption_objective.h"

namespace clipcap {

namespace {

// Token-weighted mean loss over `examples` (eval mode, no dropout, no gradients); each rank takes
// its share of every batch.
double mean_loss(Captioner& cap, const std::vector<CaptionExample>& examples, const torch::Tensor& embeddings,
                 int64_t batch_size, bool autocast, DataParallel& parallel) {
  if (examples.empty()) return std::numeric_limits<double>::quiet_NaN();
  torch::NoGradGuard no_grad;
  std::vector<int64_t> order(examples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  const int64_t n = static_cast<int64_t>(order.size()), per_rank = parallel.per_rank(batch_size, "batch_size");
  double sum = 0, tokens = 0;
  for (int64_t b = 0; b < n; b += batch_size) {
    const auto [first, last] = parallel.share(b, std::min(n, b + batch_size), per_rank);
    if (first == last) continue;
    CaptionBatch batch = collate(examples, order, first, last, embeddings);
    Bf16Autocast ac(autocast);
    sum += caption_token_losses(cap, batch).sum().item<double>();
    tokens += static_cast<double>(batch.n_tokens);
  }
  std::vector<torch::Tensor> totals{torch::tensor({sum, tokens}, torch::kFloat64)};
  parallel.sum(totals);
  return totals[0][0].item<double>() / totals[0][1].item<double>();
}

}  // namespace

CaptionTextOptions caption_text_options(const TrainConfig& cfg) {
  CaptionTextOptions t;
  t.strip = cfg.strip;
  t.lowercase = cfg.lowercase;
  t.max_tokens = cfg.max_len;
  return t;
}

CaptionTraining::CaptionTraining(Captioner& captioner, const EmbeddingDataset& ds, const TrainConfig& cfg,
                                 bool train_decoder, DataParallel& parallel)
    : cap_(captioner),
      ds_(ds),
      cfg_(cfg),
      train_decoder_(train_decoder),
      parallel_(parallel),
      per_rank_(parallel.per_rank(cfg.batch_size(), "batch_size")),
      embeddings_(ds.embeddings()) {
  const CaptionTextOptions text = caption_text_options(cfg);
  train_ = make_caption_examples(ds, "train", cap_.tokenizer(), text);
  val_ = make_caption_examples(ds, "val", cap_.tokenizer(), text);
  if (train_.empty()) throw Error(ds.dir() + ": the train split has no captions to train on");
  sample_rows_ = ds.rows("val");
  if (sample_rows_.empty()) sample_rows_ = ds.rows("train");
  if (static_cast<int64_t>(sample_rows_.size()) > cfg.val_samples) sample_rows_.resize(cfg.val_samples);
}

int64_t CaptionTraining::batches_per_epoch() const {
  const int64_t n = static_cast<int64_t>(train_.size());
  return (n + cfg_.batch_size() - 1) / cfg_.batch_size();
}

void CaptionTraining::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  order_ = shuffled_order(static_cast<int64_t>(train_.size()), cfg_.seed, epoch);
  cap_.mapping()->train();
  cap_.gpt2()->train(train_decoder_);
}

BatchLoss CaptionTraining::loss(int64_t b) {
  const int64_t B = cfg_.batch_size(), n = static_cast<int64_t>(order_.size());
  const auto [first, last] = parallel_.share(b * B, std::min(n, (b + 1) * B), per_rank_);
  if (first == last) return {torch::Tensor(), 0};
  CaptionBatch batch = collate(train_, order_, static_cast<size_t>(first), static_cast<size_t>(last), embeddings_);
  if (cfg_.prefix_noise > 0) {
    // Drawn from (seed, epoch, first example): the same noise on a rerun and for any rank count.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(cfg_.seed * 1000003 + static_cast<uint64_t>(epoch_) * 7919 +
                                                        static_cast<uint64_t>(first));
    // Scaled by each vector's length: relative to the embedding whether or not the captioner
    // normalises it.
    const torch::Tensor e = batch.embeds;
    const double std = cfg_.prefix_noise / std::sqrt(static_cast<double>(e.size(1)));
    batch.embeds = e + torch::randn(e.sizes(), gen, e.options()) * (e.norm(2, 1, true) * std);
  }
  Bf16Autocast ac(cfg_.autocast == "bf16");
  return {caption_loss(cap_, batch), batch.n_tokens};
}

Validation CaptionTraining::validate() {
  cap_.mapping()->eval();
  cap_.gpt2()->eval();
  Validation v;
  v.loss = mean_loss(cap_, val_, embeddings_, cfg_.batch_size(), cfg_.autocast == "bf16", parallel_);
  nlohmann::json samples = nlohmann::json::array();
  if (!sample_rows_.empty() && parallel_.writes_outputs()) {  // only rank 0's record is written
    const auto captions = cap_.caption_embeddings(
        embeddings_.index_select(0, torch::tensor(sample_rows_, torch::kLong)), cap_.config().decoding);
    for (size_t i = 0; i < sample_rows_.size(); ++i) {
      const auto& e = ds_.entries()[sample_rows_[i]];
      samples.push_back({{"image", e.image},
                         {"caption", captions[i]},
                         {"reference", e.captions.empty() ? std::string() : e.captions.front()}});
    }
    v.note = captions[0];
  }
  v.record["samples"] = std::move(samples);
  return v;
}

}  // namespace clipcap
