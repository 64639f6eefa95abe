#include "train/clip_objective.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "common/error.h"
#include "train/bf16_autocast.h"

namespace clipcap {

namespace {

const double kMaxLogitScale = std::log(100.0);  // CLIP clamps the temperature at 100

// Normalised embeddings, always f32 (the loss and the similarities are computed in f32).
torch::Tensor image_features(CLIPModelImpl& m, const torch::Tensor& pixel_values) {
  torch::Tensor e = m.image_embeds(m.vision_model->forward(pixel_values).pooler_output).to(torch::kFloat);  // (B, P)
  return e / e.norm(2, -1, true);
}

torch::Tensor text_features(CLIPModelImpl& m, const torch::Tensor& ids) {
  torch::Tensor e = m.text_embeds(m.text_model->forward(ids).pooler_output).to(torch::kFloat);  // (B, P)
  return e / e.norm(2, -1, true);
}

// text_features of rows of mixed lengths, cheaper: the rows sorted by length run in `groups`
// chunks, each padded only to its own longest row (padding after eos never changes the pooled
// output), and the features are put back in the rows' order.
torch::Tensor text_features_by_length(CLIPModelImpl& m, const std::vector<const std::vector<int64_t>*>& rows,
                                      const torch::Device& device, int64_t groups = 4) {
  const int64_t n = static_cast<int64_t>(rows.size());
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return rows[a]->size() < rows[b]->size(); });
  const int64_t chunk = (n + groups - 1) / groups;
  std::vector<torch::Tensor> parts;
  for (int64_t b = 0; b < n; b += chunk) {
    std::vector<const std::vector<int64_t>*> group;
    for (int64_t k = b; k < std::min(n, b + chunk); ++k) group.push_back(rows[order[k]]);
    parts.push_back(text_features(m, id_batch(group, m.config.text.pad_token_id).to(device)));  // (chunk, P)
  }
  std::vector<int64_t> position(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) position[order[k]] = k;
  return torch::cat(parts).index_select(0, torch::tensor(position, torch::kLong).to(device));  // (n, P)
}

}  // namespace

torch::Tensor contrastive_loss(const torch::Tensor& img, const torch::Tensor& txt, const torch::Tensor& img_all,
                               const torch::Tensor& txt_all, const torch::Tensor& scale, const torch::Tensor& same) {
  torch::Tensor target = same / same.sum(1, true);                                // (n, N), rows sum to 1
  torch::Tensor i2t = scale.exp() * torch::matmul(img, txt_all.t());              // (n, N) image -> text
  torch::Tensor t2i = scale.exp() * torch::matmul(txt, img_all.t());              // (n, N) text -> image
  torch::Tensor i2t_loss = -(target * torch::log_softmax(i2t, 1)).sum(1).mean();
  torch::Tensor t2i_loss = -(target * torch::log_softmax(t2i, 1)).sum(1).mean();  // same is symmetric
  return 0.5 * (i2t_loss + t2i_loss);
}

namespace {

// (n, N): 1 where row i of `rows` and column j of `columns` have the same caption.
torch::Tensor same_class(const std::vector<int32_t>& rows, const std::vector<int32_t>& columns,
                         const torch::Device& device) {
  torch::Tensor r = torch::tensor(std::vector<int64_t>(rows.begin(), rows.end()), torch::kLong);        // (n)
  torch::Tensor c = torch::tensor(std::vector<int64_t>(columns.begin(), columns.end()), torch::kLong);  // (N)
  return (r.unsqueeze(1) == c.unsqueeze(0)).to(torch::kFloat).to(device);                              // (n, N)
}

// Normalised features of many rows, in chunks, without gradients.
template <typename Fn>
torch::Tensor features_in_chunks(int64_t n, int64_t chunk, Fn&& features_of) {
  std::vector<torch::Tensor> parts;
  for (int64_t b = 0; b < n; b += chunk) parts.push_back(features_of(b, std::min(n, b + chunk)));
  return torch::cat(parts);  // (n, P)
}

double recall_from_features(const torch::Tensor& img, const torch::Tensor& txt, const std::vector<int32_t>& cls) {
  torch::Tensor best = torch::matmul(img, txt.t()).argmax(1).cpu();  // (N)
  auto b = best.accessor<int64_t, 1>();
  int64_t hits = 0;
  for (size_t i = 0; i < cls.size(); ++i) hits += cls[b[i]] == cls[i];
  return cls.empty() ? 0.0 : static_cast<double>(hits) / static_cast<double>(cls.size());
}

}  // namespace

ClipEvaluation evaluate_clip(CLIPModelImpl& m, const ImageProcessor& processor, const PairSet& set, int64_t batch_size,
                             int64_t max_pairs, const torch::Device& device, bool bf16, bool with_loss,
                             DataParallel& parallel) {
  ClipEvaluation ev;
  const int64_t n = std::min(set.size(), max_pairs);
  if (n < 2) return ev;
  torch::NoGradGuard no_grad;
  m.eval();
  std::vector<int32_t> cls;
  for (int64_t i = 0; i < n; ++i) cls.push_back(set.text_class[i][0]);
  // Each rank embeds its part of the pairs; every rank then scores all of them.
  std::vector<int64_t> counts;
  for (int r = 0; r < parallel.world_size(); ++r) {
    const auto [b, e] = even_part(n, r, parallel.world_size());
    counts.push_back(e - b);
  }
  // Not a structured binding: C++17 lambdas cannot capture those (clang refuses; gcc allows it).
  const std::pair<int64_t, int64_t> part = even_part(n, parallel.rank(), parallel.world_size());
  const int64_t mine = part.first, mine_end = part.second;
  torch::Tensor img = parallel.gather_rows(features_in_chunks(mine_end - mine, batch_size, [&](int64_t b, int64_t e) {
    std::vector<int64_t> rows;
    for (int64_t i = mine + b; i < mine + e; ++i) rows.push_back(i);
    Bf16Autocast autocast(bf16);
    return image_features(m, pixel_batch(processor, set.images, rows).to(device));
  }), counts);
  torch::Tensor txt = parallel.gather_rows(features_in_chunks(mine_end - mine, batch_size, [&](int64_t b, int64_t e) {
    std::vector<const std::vector<int64_t>*> rows;
    for (int64_t i = mine + b; i < mine + e; ++i) rows.push_back(&set.ids[i][0]);
    Bf16Autocast autocast(bf16);
    return text_features_by_length(m, rows, device);
  }), counts);
  ev.recall_at_1 = recall_from_features(img, txt, cls);
  if (with_loss) {
    double total = 0;
    int64_t weight = 0;
    for (int64_t b = 0; b + 1 < n; b += batch_size) {  // a last batch of one has no negatives
      const int64_t e = std::min(n, b + batch_size);
      std::vector<int32_t> c(cls.begin() + b, cls.begin() + e);
      torch::Tensor i = img.slice(0, b, e), t = txt.slice(0, b, e);
      total += contrastive_loss(i, t, i, t, m.logit_scale, same_class(c, c, device)).item<double>() *
               static_cast<double>(e - b);
      weight += e - b;
    }
    ev.loss = total / static_cast<double>(weight);
  }
  m.train();
  return ev;
}

double clip_recall_at_1(CLIPModelImpl& model, const torch::Tensor& pixel_values,
                        const std::vector<std::vector<int64_t>>& texts, int64_t batch_size) {
  const int64_t n = pixel_values.size(0);
  if (static_cast<int64_t>(texts.size()) != n)
    throw Error("recall@1: " + std::to_string(n) + " images but " + std::to_string(texts.size()) + " captions");
  torch::NoGradGuard no_grad;
  const torch::Device device = model.logit_scale.device();
  std::map<std::vector<int64_t>, int32_t> classes;
  std::vector<int32_t> cls;
  for (const auto& t : texts) cls.push_back(classes.emplace(t, static_cast<int32_t>(classes.size())).first->second);
  torch::Tensor img = features_in_chunks(n, batch_size, [&](int64_t b, int64_t e) {
    return image_features(model, pixel_values.slice(0, b, e).to(device));
  });
  torch::Tensor txt = features_in_chunks(n, batch_size, [&](int64_t b, int64_t e) {
    std::vector<const std::vector<int64_t>*> rows;
    for (int64_t i = b; i < e; ++i) rows.push_back(&texts[i]);
    return text_features_by_length(model, rows, device);
  });
  return recall_from_features(img, txt, cls);
}

ClipTraining::ClipTraining(CLIPModelImpl& model, const ImageProcessor& processor, const PairSet& train,
                           const PairSet& val, const ClipSchedule& schedule, int64_t batch_size, torch::Device device,
                           bool bf16, DataParallel& parallel)
    : model_(model),
      processor_(processor),
      train_(train),
      val_(val),
      schedule_(schedule),
      batch_(batch_size),
      per_rank_(parallel.per_rank(batch_size, "batch_size")),
      device_(device),
      bf16_(bf16),
      parallel_(parallel),
      rng_(schedule.seed) {}

void ClipTraining::start_epoch(int64_t) {
  // The whole epoch's draws, the same on every rank: a rank's share of a batch is then the same
  // pairs, captions and translations one process would have drawn for those positions.
  const int64_t n = train_.size();
  order_.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order_[i] = i;
  std::shuffle(order_.begin(), order_.end(), rng_);
  caption_.assign(static_cast<size_t>(n), 0);
  augmentation_.assign(static_cast<size_t>(n), {});
  const AugmentationSettings augment = schedule_.augmentation();
  for (int64_t i = 0; i < n; ++i) {
    std::uniform_int_distribution<size_t> pick(0, train_.ids[order_[i]].size() - 1);
    caption_[i] = pick(rng_);
    if (augment.any()) augmentation_[i] = draw_augmentation(augment, rng_);
  }
  model_.train();
}

BatchLoss ClipTraining::loss(int64_t k) {
  const auto [first, last] = parallel_.share(k * batch_, (k + 1) * batch_, per_rank_);
  std::vector<int64_t> rows(order_.begin() + first, order_.begin() + last);
  std::vector<ImageAugmentation> augmentations(augmentation_.begin() + first, augmentation_.begin() + last);
  std::vector<const std::vector<int64_t>*> ids;
  std::vector<int32_t> cls, cls_all;  // this rank's pairs; the global batch's
  for (int64_t i = k * batch_; i < (k + 1) * batch_; ++i) {
    const int64_t r = order_[i];
    cls_all.push_back(train_.text_class[r][caption_[i]]);
    if (i >= first && i < last) {
      ids.push_back(&train_.ids[r][caption_[i]]);
      cls.push_back(cls_all.back());
    }
  }
  torch::Tensor px = pixel_batch(processor_, train_.images, rows, augmentations).to(device_);  // (n, 3, S, S)
  torch::Tensor img, txt;  // (n, P) f32
  {
    Bf16Autocast autocast(bf16_);  // the towers only: the loss stays f32
    img = image_features(model_, px);
    txt = text_features_by_length(model_, ids, device_);
  }
  // This rank's rows against the whole global batch: the negatives are every rank's pairs.
  torch::Tensor img_all = parallel_.gather(img), txt_all = parallel_.gather(txt);  // (B, P)
  return {contrastive_loss(img, txt, img_all, txt_all, model_.logit_scale, same_class(cls, cls_all, device_)),
          last - first};
}

void ClipTraining::after_step() {
  torch::NoGradGuard no_grad;
  model_.logit_scale.clamp_(0.0, kMaxLogitScale);
}

Validation ClipTraining::validate() {
  const ClipEvaluation ev =
      evaluate_clip(model_, processor_, val_, batch_, kMaxRecallPairs, device_, bf16_, true, parallel_);
  Validation v;
  if (ev.loss >= 0) {
    v.loss = ev.loss;
    v.metrics.push_back({"val_recall_at_1", "val r@1", ev.recall_at_1});
  }
  v.metrics.push_back({"logit_scale", "scale", std::exp(model_.logit_scale.item<double>())});
  return v;
}

}  // namespace clipcap
