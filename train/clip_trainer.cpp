#include "train/clip_trainer.h"

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "common/error.h"
#include "common/json_util.h"
#include "model/clip_tokenizer.h"
#include "model/image_processor.h"
#include "model/load_weights.h"
#include "model/safetensors.h"
#include "train/bf16_autocast.h"
#include "train/bpe_trainer.h"

namespace fs = std::filesystem;

namespace clipcap {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int64_t kMaxRecallPairs = 5000;       // val pairs scored per epoch (a (N, N) matrix)
constexpr int64_t kTrainRecallPairs = 2048;     // training pairs scored after training
const double kMaxLogitScale = std::log(100.0);  // CLIP clamps the temperature at 100

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// ---- data -----------------------------------------------------------------------------------------

// One split's images, decoded and resized + cropped to image_size, with their captions.
struct PairSet {
  std::vector<Image> images;                        // S x S RGB, as the processor crops them
  std::vector<std::vector<std::string>> captions;   // per image, at least one
  std::vector<std::vector<std::vector<int64_t>>> ids;  // per image, per caption: bos ... eos
  std::vector<std::vector<int32_t>> text_class;     // per image, per caption: equal ids, equal class
  int64_t size() const { return static_cast<int64_t>(images.size()); }
};

struct LoadReport {
  int64_t skipped = 0;
  std::string first_error;
};

PairSet load_pairs(const std::vector<const SourceItem*>& items, const std::string& root,
                   const ImageProcessor& processor, int workers, LoadReport& report) {
  std::vector<Image> decoded(items.size());
  std::vector<std::string> errors(items.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < items.size();) {
      const std::string path = root.empty() ? items[i]->image : (fs::path(root) / items[i]->image).string();
      try {
        decoded[i] = processor.resize_and_crop(read_image(path));
      } catch (const std::exception& e) {  // an unreadable image is skipped, not fatal
        errors[i] = e.what();
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < workers; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();

  PairSet set;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!errors[i].empty()) {
      if (report.skipped++ == 0) report.first_error = errors[i].substr(0, errors[i].find('\n'));
      continue;
    }
    set.images.push_back(std::move(decoded[i]));
    set.captions.push_back(items[i]->captions);
  }
  return set;
}

// Tokenises every caption; identical id sequences share a class (positives of each other).
void tokenise(PairSet& set, const ClipBpeTokenizer& tok, std::map<std::vector<int64_t>, int32_t>& classes) {
  set.ids.clear();
  set.text_class.clear();
  for (const auto& caps : set.captions) {
    set.ids.emplace_back();
    set.text_class.emplace_back();
    for (const auto& c : caps) {
      std::vector<int64_t> ids = tok.encode(c);
      auto it = classes.emplace(ids, static_cast<int32_t>(classes.size())).first;
      set.text_class.back().push_back(it->second);
      set.ids.back().push_back(std::move(ids));
    }
  }
}

// Translated by (dx, dy) with the edge pixels replicated into the gap.
Image shifted(const Image& in, int64_t dx, int64_t dy) {
  if (dx == 0 && dy == 0) return in;
  Image out;
  out.width = in.width, out.height = in.height;
  out.pixels.resize(in.pixels.size());
  for (int64_t y = 0; y < in.height; ++y) {
    const uint8_t* src = in.row(std::clamp<int64_t>(y - dy, 0, in.height - 1));
    uint8_t* dst = out.row(y);
    for (int64_t x = 0; x < in.width; ++x) {
      const uint8_t* p = src + 3 * std::clamp<int64_t>(x - dx, 0, in.width - 1);
      dst[3 * x] = p[0], dst[3 * x + 1] = p[1], dst[3 * x + 2] = p[2];
    }
  }
  return out;
}

// (n, 3, S, S): the processor's own rescale + normalise of each (possibly shifted) image.
torch::Tensor pixel_batch(const ImageProcessor& processor, const std::vector<Image>& images,
                          const std::vector<int64_t>& rows, int64_t shift, std::mt19937_64* rng) {
  std::vector<torch::Tensor> px;
  px.reserve(rows.size());
  std::uniform_int_distribution<int64_t> offset(-shift, shift);
  for (int64_t r : rows) {
    if (shift > 0 && rng) {
      int64_t dx = offset(*rng), dy = offset(*rng);
      px.push_back(processor.to_pixel_values(shifted(images[r], dx, dy)));
    } else {
      px.push_back(processor.to_pixel_values(images[r]));
    }
  }
  return torch::stack(px);  // (n, 3, S, S)
}

// (n, T) ids padded with pad_id to the longest row. No attention mask is needed: the text tower is
// causal and pools at the first eos, so the padding after it never reaches the pooled position.
torch::Tensor id_batch(const std::vector<const std::vector<int64_t>*>& rows, int64_t pad_id) {
  size_t T = 0;
  for (const auto* r : rows) T = std::max(T, r->size());
  torch::Tensor out = torch::full({static_cast<int64_t>(rows.size()), static_cast<int64_t>(T)}, pad_id, torch::kLong);
  auto a = out.accessor<int64_t, 2>();
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t t = 0; t < rows[i]->size(); ++t) a[i][t] = (*rows[i])[t];
  return out;  // (n, T)
}

// ---- model pieces -------------------------------------------------------------------------------

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

// Symmetric InfoNCE; same (B, B) is 1 where the captions are identical (the diagonal included).
torch::Tensor contrastive_loss(const torch::Tensor& img, const torch::Tensor& txt, const torch::Tensor& scale,
                               const torch::Tensor& same) {
  torch::Tensor logits = scale.exp() * torch::matmul(img, txt.t());  // (B, B) image -> text
  torch::Tensor target = same / same.sum(1, true);                   // (B, B), rows sum to 1
  torch::Tensor i2t = -(target * torch::log_softmax(logits, 1)).sum(1).mean();
  torch::Tensor t2i = -(target * torch::log_softmax(logits.t(), 1)).sum(1).mean();  // same is symmetric
  return 0.5 * (i2t + t2i);
}

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

struct Evaluation {
  double loss = -1, recall_at_1 = -1;
};

// Loss in batches of batch_size and recall@1 over the first kMaxRecallPairs images of set, each
// with its first caption, no augmentation.
Evaluation evaluate(CLIPModelImpl& m, const ImageProcessor& processor, const PairSet& set, int64_t batch_size,
                    int64_t max_pairs, const torch::Device& device, bool bf16, bool with_loss) {
  Evaluation ev;
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

// ---- schedule -----------------------------------------------------------------------------------

// Linear warmup over the first warmup_steps steps, then cosine decay to 0 at the last step.
double lr_at(int64_t step, int64_t total, int64_t warmup_steps, double peak) {
  if (step < warmup_steps) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  const double span = static_cast<double>(std::max<int64_t>(1, total - warmup_steps));
  const double progress = static_cast<double>(step - warmup_steps) / span;
  return peak * 0.5 * (1.0 + std::cos(M_PI * progress));
}

// ---- output -------------------------------------------------------------------------------------

// OUT may not exist yet (or, with overwrite, may be replaced); OUT.tmp is a leftover work directory.
void check_output(const std::string& out, bool overwrite) {
  std::error_code ec;
  if (out.empty()) throw Error("--out: no output directory given");
  if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && fs::is_empty(out, ec)) && !overwrite)
    throw Error(out + ": already exists (pass --overwrite to replace it, or choose another --out)");
  fs::path parent = fs::absolute(out).parent_path();
  if (!fs::is_directory(parent, ec)) throw Error(out + ": parent directory " + parent.string() + " does not exist");
}

void publish(const std::string& tmp, const std::string& out) {
  std::error_code ec;
  const std::string old = out + ".old";
  fs::remove_all(old, ec);
  if (fs::exists(out, ec)) {
    fs::rename(out, old, ec);
    if (ec) throw Error(out + ": cannot move the previous directory aside: " + ec.message());
  }
  fs::rename(tmp, out, ec);
  if (ec) throw Error(out + ": cannot rename " + tmp + " to it: " + ec.message());
  fs::remove_all(old, ec);
}

std::string fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1e", v);
  return buf;
}

json epoch_json(const ClipEpochStats& e) {
  json j = {{"epoch", e.epoch}, {"step", e.step}, {"train_loss", e.train_loss}, {"logit_scale", e.logit_scale},
            {"lr", e.lr},       {"seconds", e.seconds}};
  j["val_loss"] = e.val_loss >= 0 ? json(e.val_loss) : json(nullptr);
  j["val_recall_at_1"] = e.val_recall_at_1 >= 0 ? json(e.val_recall_at_1) : json(nullptr);
  return j;
}

}  // namespace

// ---- public -------------------------------------------------------------------------------------

void init_clip_weights(CLIPModelImpl& m) {
  torch::NoGradGuard no_grad;
  auto normal = [](torch::Tensor& t, double std) { t.normal_(0.0, std); };
  auto init_encoder = [&](CLIPEncoderImpl& enc, const CLIPEncoderConfig& cfg) {
    const double d = static_cast<double>(cfg.hidden_size), L = static_cast<double>(cfg.num_hidden_layers);
    const double in_std = std::pow(d, -0.5) * std::pow(2 * L, -0.5);
    for (const auto& item : enc.layers->children()) {
      auto* layer = item->as<CLIPEncoderLayerImpl>();
      auto& a = *layer->self_attn;
      for (auto* lin : {&a.q_proj, &a.k_proj, &a.v_proj}) normal((*lin)->weight, in_std);
      normal(a.out_proj->weight, std::pow(d, -0.5));
      normal(layer->mlp->fc1->weight, std::pow(2 * d, -0.5));
      normal(layer->mlp->fc2->weight, in_std);
    }
  };
  // Defaults first: LayerNorm 1/0, every Linear bias 0 (HF's trailing rules).
  for (auto& mod : m.modules(/*include_self=*/false)) {
    if (auto* ln = mod->as<torch::nn::LayerNormImpl>()) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    } else if (auto* lin = mod->as<torch::nn::LinearImpl>()) {
      if (lin->bias.defined()) lin->bias.zero_();
    }
  }
  if (m.text_model) {
    auto& e = *m.text_model->embeddings;
    normal(e.token_embedding->weight, 0.02);
    normal(e.position_embedding->weight, 0.02);
    init_encoder(*m.text_model->encoder, m.config.text);
  }
  auto& ve = *m.vision_model->embeddings;
  normal(ve.class_embedding, std::pow(static_cast<double>(m.config.vision.hidden_size), -0.5));
  normal(ve.patch_embedding->weight, 0.02);
  normal(ve.position_embedding->weight, 0.02);
  init_encoder(*m.vision_model->encoder, m.config.vision);
  if (m.visual_projection) normal(m.visual_projection->weight, std::pow(static_cast<double>(m.config.vision.hidden_size), -0.5));
  if (m.text_projection) normal(m.text_projection->weight, std::pow(static_cast<double>(m.config.text.hidden_size), -0.5));
  if (m.logit_scale.defined()) m.logit_scale.fill_(std::log(1.0 / 0.07));
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

ClipTrainResult train_clip(const ClipTrainOptions& opts) {
  const auto started = Clock::now();
  std::ostream& log = opts.log ? *opts.log : std::cerr;
  const bool tty = opts.log == nullptr && !opts.progress.out &&
                   (opts.progress.tty >= 0 ? opts.progress.tty == 1 : ::isatty(STDERR_FILENO) == 1);
  const char* clear = tty ? "\r\033[K" : "";  // log lines must not land on the progress line
  const ClipTrainConfig& cfg = opts.config;
  cfg.validate("clip training config");
  const torch::ScalarType dtype = opts.runtime.torch_dtype();
  const torch::Device device = opts.runtime.torch_device();
  if (dtype != torch::kFloat32 && (dtype != torch::kBFloat16 || !device.is_cpu()))
    throw Error("--dtype " + opts.runtime.dtype + ": clip training runs in f32, or with bf16 autocast on the CPU");
  const bool bf16 = dtype == torch::kBFloat16;
  opts.split.validate();
  check_output(opts.out, opts.overwrite);

  // 1. the split, exactly as clipcap-data build decides it
  CaptionSource source = read_caption_source(opts.captions, opts.source);
  if (source.items.empty())
    throw Error(opts.captions + ": no usable caption rows, so no image/caption pairs to train on" +
                (source.problems.empty() ? std::string()
                                         : " (" + std::to_string(source.problems.size()) + " rows rejected; first: " +
                                               source.problems[0].row + ": " + source.problems[0].reason + ")"));
  assign_splits(source.items, opts.split);
  std::vector<const SourceItem*> train_items, val_items;
  for (const auto& item : source.items) {
    if (item.split == "train") train_items.push_back(&item);
    if (item.split == "val") val_items.push_back(&item);
  }
  if (train_items.size() < 2)
    throw Error(opts.captions + ": " + std::to_string(train_items.size()) + " training image(s) after the split (of " +
                std::to_string(source.items.size()) + "); contrastive training needs at least 2");

  // 3. decode every image once (before 2: the vocabulary is learned from the images that could be read)
  ImageProcessorConfig pcfg;
  pcfg.shortest_edge = cfg.vision.image_size;
  pcfg.crop_height = pcfg.crop_width = cfg.vision.image_size;
  const ImageProcessor processor(pcfg);
  const int workers = opts.runtime.threads > 0 ? opts.runtime.threads : available_cores();
  LoadReport report;
  PairSet train = load_pairs(train_items, opts.images, processor, workers, report);
  PairSet val = load_pairs(val_items, opts.images, processor, workers, report);
  if (report.skipped > 0)
    log << clear << "clip: skipped " << report.skipped << " unreadable image(s); first: " << report.first_error << "\n";
  if (train.size() < 2)
    throw Error(opts.captions + ": only " + std::to_string(train.size()) + " of " + std::to_string(train_items.size()) +
                " training images could be read" +
                (report.first_error.empty() ? std::string() : " (first error: " + report.first_error + ")"));

  // 2. the vocabulary
  std::vector<std::string> texts;
  for (const auto& caps : train.captions) texts.insert(texts.end(), caps.begin(), caps.end());
  ClipBpeVocab vocab = train_clip_bpe(texts, cfg.tokenizer);
  const std::string tmp = opts.out + ".tmp";
  {
    std::error_code ec;
    fs::remove_all(tmp, ec);  // a previous interrupted run's
    fs::create_directories(tmp, ec);
    if (ec) throw Error(tmp + ": cannot create the work directory: " + ec.message());
  }
  write_clip_bpe(vocab, tmp, cfg.text.max_position_embeddings);
  const CLIPConfig clip_cfg = cfg.clip_config(vocab.size(), vocab.bos_id(), vocab.eos_id());
  write_json_atomic(tmp + "/config.json", clip_cfg.to_json());
  auto tok = ClipBpeTokenizer::from_dir(tmp);  // what users will load: the ids training sees
  std::map<std::vector<int64_t>, int32_t> classes;
  tokenise(train, *tok, classes);
  tokenise(val, *tok, classes);
  const double preprocess_seconds = seconds_since(started);

  // 4. the model and the loop
  torch::manual_seed(cfg.training.seed);
  CLIPModel model(clip_cfg);
  init_clip_weights(*model);
  model->to(device);
  model->train();
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  const ClipSchedule& s = cfg.training;
  auto adamw = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(s.lr).betas({s.beta1, s.beta2}).eps(1e-6).weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, adamw(s.weight_decay));
  groups.emplace_back(no_decay, adamw(0.0));
  torch::optim::AdamW optimizer(groups, *adamw(0.0));

  const int64_t n = train.size();
  const int64_t batch = std::min(s.batch_size, n);
  const int64_t steps_per_epoch = n / batch;
  const int64_t total = steps_per_epoch * s.epochs;
  const int64_t warmup_steps = static_cast<int64_t>(std::llround(s.warmup * static_cast<double>(total)));

  ClipTrainResult result;
  result.out = opts.out;
  result.train_images = n;
  for (const auto& c : train.captions) result.train_captions += static_cast<int64_t>(c.size());
  result.val_images = val.size();
  result.skipped_images = report.skipped;
  result.vocab_size = vocab.size();
  result.preprocess_seconds = preprocess_seconds;
  log << clear << "clip: " << n << " training images (" << result.train_captions << " captions), " << val.size()
      << " val images; vocabulary " << vocab.size() << " tokens; " << steps_per_epoch << " steps/epoch x " << s.epochs
      << " epochs of " << batch << " pairs; prepared in " << fixed(preprocess_seconds, 1) << "s\n";

  std::mt19937_64 rng(s.seed);
  ProgressOptions popts = opts.progress;
  popts.unit = "batch";
  Progress progress("clip", total, popts);
  const auto train_started = Clock::now();
  int64_t step = 0;
  double lr = 0;
  for (int64_t epoch = 1; epoch <= s.epochs; ++epoch) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    double loss_sum = 0;
    for (int64_t k = 0; k < steps_per_epoch; ++k, ++step) {
      if (opts.stop && opts.stop->load()) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        result.steps = step;
        return result;  // finished = false
      }
      std::vector<int64_t> rows(order.begin() + k * batch, order.begin() + (k + 1) * batch);
      std::vector<const std::vector<int64_t>*> ids;
      std::vector<int32_t> cls;
      for (int64_t r : rows) {
        std::uniform_int_distribution<size_t> pick(0, train.ids[r].size() - 1);
        size_t c = pick(rng);
        ids.push_back(&train.ids[r][c]);
        cls.push_back(train.text_class[r][c]);
      }
      torch::Tensor px = pixel_batch(processor, train.images, rows, s.shift, &rng).to(device);  // (B, 3, S, S)

      lr = lr_at(step, total, warmup_steps, s.lr);
      for (auto& g : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
      optimizer.zero_grad();
      torch::Tensor img, txt;  // (B, P) f32
      {
        Bf16Autocast autocast(bf16);
        img = image_features(*model, px);
        txt = text_features_by_length(*model, ids, device);
      }
      torch::Tensor loss = contrastive_loss(img, txt, model->logit_scale, same_class(cls, device));
      loss.backward();
      optimizer.step();
      {
        torch::NoGradGuard no_grad;
        model->logit_scale.clamp_(0.0, kMaxLogitScale);
      }
      const double value = loss.item<double>();
      if (!std::isfinite(value))
        throw Error(opts.out + ": training diverged at step " + std::to_string(step + 1) + " (loss " +
                    std::to_string(value) + "); lower --lr");
      loss_sum += value;
      progress.advance(1);
    }

    ClipEpochStats e;
    e.epoch = epoch;
    e.step = step;
    e.train_loss = loss_sum / static_cast<double>(steps_per_epoch);
    Evaluation ev = evaluate(*model, processor, val, batch, kMaxRecallPairs, device, bf16, true);
    e.val_loss = ev.loss;
    e.val_recall_at_1 = ev.recall_at_1;
    e.logit_scale = std::exp(model->logit_scale.item<double>());
    e.lr = lr;
    e.seconds = seconds_since(train_started);
    result.epochs.push_back(e);
    const double rate = e.seconds > 0 ? static_cast<double>(step * batch) / e.seconds : 0;
    const double eta = step > 0 ? e.seconds * static_cast<double>(total - step) / static_cast<double>(step) : 0;
    log << clear << "epoch " << epoch << "/" << s.epochs << " | step " << step << "/" << total << " | loss "
        << fixed(e.train_loss, 4);
    if (e.val_loss >= 0) log << " | val loss " << fixed(e.val_loss, 4) << " | val r@1 " << fixed(e.val_recall_at_1, 3);
    log << " | scale " << fixed(e.logit_scale, 1) << " | lr " << sci(lr) << " | " << fixed(rate, 0) << " img/s | "
        << format_duration(e.seconds) << " | eta " << format_duration(eta) << "\n";
    log.flush();
  }
  progress.finish();
  result.train_seconds = seconds_since(train_started);
  result.train_recall_at_1 = evaluate(*model, processor, train, batch, kTrainRecallPairs, device, bf16, false).recall_at_1;
  result.steps = step;

  // 6. the directory
  model->eval();
  model->to(torch::kCPU);
  save_safetensors(tmp + "/model.safetensors", collect_weights(*model));
  write_json_atomic(tmp + "/preprocessor_config.json", pcfg.to_json());
  json epochs = json::array();
  for (const auto& e : result.epochs) epochs.push_back(epoch_json(e));
  const ClipEpochStats& last = result.epochs.back();
  write_json_atomic(
      tmp + "/training.json",
      {{"format", "clipcap-clip-training"},
       {"format_version", 1},
       {"tool_version", CLIPCAP_VERSION},
       {"config", cfg.to_json()},
       {"data",
        {{"captions", opts.captions},
         {"images", opts.images},
         {"format", opts.source.format},
         {"split", {{"seed", opts.split.seed}, {"train", opts.split.train}, {"val", opts.split.val}}},
         {"train_images", result.train_images},
         {"train_captions", result.train_captions},
         {"val_images", result.val_images},
         {"skipped_images", result.skipped_images}}},
       {"vocab_size", result.vocab_size},
       {"steps", result.steps},
       {"batch_size", batch},
       {"final",
        {{"train_loss", last.train_loss},
         {"val_loss", last.val_loss >= 0 ? json(last.val_loss) : json(nullptr)},
         {"val_recall_at_1", last.val_recall_at_1 >= 0 ? json(last.val_recall_at_1) : json(nullptr)},
         {"val_recall_pairs", std::min(result.val_images, kMaxRecallPairs)},  // recall depends on the pool size
         {"train_recall_at_1", result.train_recall_at_1},
         {"train_recall_pairs", std::min(result.train_images, kTrainRecallPairs)},
         {"logit_scale", last.logit_scale}}},
       {"epochs", epochs},
       {"seconds", {{"prepare", result.preprocess_seconds}, {"train", result.train_seconds}}},
       {"threads", torch::get_num_threads()},
       {"device", opts.runtime.device},
       {"dtype", bf16 ? "bf16 autocast" : "f32"}});
  publish(tmp, opts.out);
  result.finished = true;
  result.model = model;
  return result;
}

}  // namespace clipcap
