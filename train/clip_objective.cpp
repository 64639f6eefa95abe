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

torch::Tensor contrastive_loss(const torch::Tensor& img, const torch::Tensor& txt, const torch::Tensor& scale,
                               const torch::Tensor& same) {
  torch::Tensor logits = scale.exp() * torch::matmul(img, txt.t());  // (B, B) image -> text
  torch::Tensor target = same / same.sum(1, true);                   // (B, B), rows sum to 1
  torch::Tensor i2t = -(target * torch::log_softmax(logits, 1)).sum(1).mean();
  torch::Tensor t2i = -(target * torch::log_softmax(logits.t(), 1)).sum(1).mean();  // same is symmetric
  return 0.5 * (i2t + t2i);
}

namespace {

torch::Tensor same_class(const std::vector<int32_t>& cls, const torch::Device& device) {
  torch::Tensor c = torch::tensor(std::vector<int64_t>(cls.begin(), cls.end()), torch::kLong);  // (B)
  return (c.unsqueeze(1) == c.unsqueeze(0)).to(torch::kFloat).to(device);                       // (B, B)
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
                             int64_t max_pairs, const torch::Device& device, bool bf16, bool with_loss) {
  ClipEvaluation ev;
  const int64_t n = std::min(set.size(), max_pairs);
  if (n < 2) return ev;
  torch::NoGradGuard no_grad;
  m.eval();
  std::vector<int32_t> cls;
  for (int64_t i = 0; i < n; ++i) cls.push_back(set.text_class[i][0]);
  torch::Tensor img = features_in_chunks(n, batch_size, [&](int64_t b, int64_t e) {
    std::vector<int64_t> rows;
    for (int64_t i = b; i < e; ++i) rows.push_back(i);
    Bf16Autocast autocast(bf16);
    return image_features(m, pixel_batch(processor, set.images, rows, 0, nullptr).to(device));
  });
  torch::Tensor txt = features_in_chunks(n, batch_size, [&](int64_t b, int64_t e) {
    std::vector<const std::vector<int64_t>*> rows;
    for (int64_t i = b; i < e; ++i) rows.push_back(&set.ids[i][0]);
    Bf16Autocast autocast(bf16);
    return text_features_by_length(m, rows, device);
  });
  ev.recall_at_1 = recall_from_features(img, txt, cls);
  if (with_loss) {
    double total = 0;
    int64_t weight = 0;
    for (int64_t b = 0; b + 1 < n; b += batch_size) {  // a last batch of one has no negatives
      const int64_t e = std::min(n, b + batch_size);
      std::vector<int32_t> c(cls.begin() + b, cls.begin() + e);
      total += contrastive_loss(img.slice(0, b, e), txt.slice(0, b, e), m.logit_scale, same_class(c, device))
                   .item<double>() * static_cast<double>(e - b);
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
                           bool bf16)
    : model_(model),
      processor_(processor),
      train_(train),
      val_(val),
      schedule_(schedule),
      batch_(batch_size),
      device_(device),
      bf16_(bf16),
      rng_(schedule.seed) {}

void ClipTraining::start_epoch(int64_t) {
  order_.resize(static_cast<size_t>(train_.size()));
  for (int64_t i = 0; i < train_.size(); ++i) order_[i] = i;
  std::shuffle(order_.begin(), order_.end(), rng_);
  model_.train();
}

BatchLoss ClipTraining::loss(int64_t k) {
  std::vector<int64_t> rows(order_.begin() + k * batch_, order_.begin() + (k + 1) * batch_);
  std::vector<const std::vector<int64_t>*> ids;
  std::vector<int32_t> cls;
  for (int64_t r : rows) {
    std::uniform_int_distribution<size_t> pick(0, train_.ids[r].size() - 1);
    size_t c = pick(rng_);
    ids.push_back(&train_.ids[r][c]);
    cls.push_back(train_.text_class[r][c]);
  }
  torch::Tensor px = pixel_batch(processor_, train_.images, rows, schedule_.shift, &rng_).to(device_);  // (B, 3, S, S)
  torch::Tensor img, txt;  // (B, P) f32
  {
    Bf16Autocast autocast(bf16_);  // the towers only: the loss stays f32
    img = image_features(model_, px);
    txt = text_features_by_length(model_, ids, device_);
  }
  return {contrastive_loss(img, txt, model_.logit_scale, same_class(cls, device_)), batch_};
}

void ClipTraining::after_step() {
  torch::NoGradGuard no_grad;
  model_.logit_scale.clamp_(0.0, kMaxLogitScale);
}

Validation ClipTraining::validate() {
  const ClipEvaluation ev = evaluate_clip(model_, processor_, val_, batch_, kMaxRecallPairs, device_, bf16_, true);
  Validation v;
  if (ev.loss >= 0) {
    v.loss = ev.loss;
    v.metrics.push_back({"val_recall_at_1", "val r@1", ev.recall_at_1});
  }
  v.metrics.push_back({"logit_scale", "scale", std::exp(model_.logit_scale.item<double>())});
  return v;
}

}  // namespace clipcap
