#include "train/clip_trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_util.h"
#include "common/stopwatch.h"
#include "common/strings.h"
#include "model/image_processor.h"
#include "model/tokenizers/clip_tokenizer.h"
#include "model/weights/load_weights.h"
#include "model/weights/safetensors.h"
#include "train/bpe_trainer.h"
#include "train/clip_objective.h"
#include "train/clip_pairs.h"
#include "train/training_loop.h"

namespace fs = std::filesystem;

namespace clipcap {
namespace {

using json = nlohmann::json;

constexpr int64_t kTrainRecallPairs = 2048;  // training pairs scored after training

// OUT may not exist yet (or, with overwrite, may be replaced); OUT.tmp is a leftover work directory.
void check_output(const std::string& out, bool overwrite) {
  std::error_code ec;
  if (out.empty()) throw Error("--out: no output directory given");
  if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && fs::is_empty(out, ec)) && !overwrite)
    throw Error(out + ": already exists (pass --overwrite to replace it, or choose another --out)");
  fs::path parent = fs::absolute(out).parent_path();
  if (!fs::is_directory(parent, ec)) throw Error(out + ": parent directory " + parent.string() + " does not exist");
}

json epoch_json(const ClipEpochStats& e) {
  json j = {{"epoch", e.epoch}, {"step", e.step}, {"train_loss", e.train_loss}, {"logit_scale", e.logit_scale},
            {"lr", e.lr},       {"seconds", e.seconds}};
  j["val_loss"] = e.val_loss >= 0 ? json(e.val_loss) : json(nullptr);
  j["val_recall_at_1"] = e.val_recall_at_1 >= 0 ? json(e.val_recall_at_1) : json(nullptr);
  return j;
}

}  // namespace

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

ClipTrainResult train_clip(const ClipTrainOptions& opts) {
  const auto started = Clock::now();
  DataParallel& parallel = opts.parallel ? *opts.parallel : single_process();
  const bool writer = parallel.writes_outputs();  // rank 0 writes OUT; every rank computes
  std::ostream& log = opts.log ? *opts.log : std::cerr;
  const ClipTrainConfig& cfg = opts.config;
  cfg.validate("clip training config");
  const torch::ScalarType dtype = opts.runtime.float_dtype();
  const torch::Device device = opts.runtime.torch_device();
  if (dtype != torch::kFloat32 && (dtype != torch::kBFloat16 || !device.is_cpu()))
    throw Error("--dtype " + opts.runtime.dtype + ": clip training runs in f32, or with bf16 autocast on the CPU");
  const bool bf16 = dtype == torch::kBFloat16;
  opts.split.validate();
  if (writer) check_output(opts.out, opts.overwrite);

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

  // 2. decode every image once
  ImageProcessorConfig pcfg;
  pcfg.shortest_edge = cfg.vision.image_size;
  pcfg.crop_height = pcfg.crop_width = cfg.vision.image_size;
  const ImageProcessor processor(pcfg);
  const int workers = opts.runtime.threads > 0 ? opts.runtime.threads : available_cores();
  LoadReport report;
  PairSet train = load_pairs(train_items, opts.images, processor, workers, report);
  PairSet val = load_pairs(val_items, opts.images, processor, workers, report);
  if (report.skipped > 0 && writer)
    log << "clip: skipped " << report.skipped << " unreadable image(s); first: " << report.first_error << "\n";
  if (train.size() < 2)
    throw Error(opts.captions + ": only " + std::to_string(train.size()) + " of " + std::to_string(train_items.size()) +
                " training images could be read" +
                (report.first_error.empty() ? std::string() : " (first error: " + report.first_error + ")"));

  // 3. the vocabulary, from the images that could be read
  std::vector<std::string> texts;
  for (const auto& caps : train.captions) texts.insert(texts.end(), caps.begin(), caps.end());
  ClipBpeVocab vocab = train_clip_bpe(texts, cfg.tokenizer);
  // Every rank learns the same vocabulary from the same captions and loads it from its own work
  // directory; rank 0's becomes OUT.
  const std::string tmp = writer ? opts.out + ".tmp" : opts.out + ".rank" + std::to_string(parallel.rank()) + ".tmp";
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
  {
    std::vector<torch::Tensor> weights = model->parameters();
    parallel.broadcast(weights);  // every rank starts from rank 0's weights, as DDP does
  }
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
  ClipTraining objective(*model, processor, train, val, s, batch, device, bf16, parallel);
  TrainingLoopOptions lo;
  lo.epochs = s.epochs;
  lo.rate_key = "images_per_s";
  lo.rate_label = "img/s";
  lo.progress = opts.progress;
  if (!lo.progress.out) lo.progress.out = &log;
  const int64_t total = objective.batches_per_epoch() * s.epochs;
  const LrSchedule schedule("cosine", s.lr, 0.0, s.warmup, total, 1);

  ClipTrainResult result;
  result.out = opts.out;
  result.train_images = n;
  for (const auto& c : train.captions) result.train_captions += static_cast<int64_t>(c.size());
  result.val_images = val.size();
  result.skipped_images = report.skipped;
  result.vocab_size = vocab.size();
  result.preprocess_seconds = preprocess_seconds;
  if (writer)
    log << "clip: " << n << " training images (" << result.train_captions << " captions), " << val.size()
      << " val images; vocabulary " << vocab.size() << " tokens; " << objective.batches_per_epoch() << " steps/epoch x "
      << s.epochs << " epochs of " << batch << " pairs; prepared in " << format_number(preprocess_seconds, "%.1f") << "s\n";

  TrainingHooks hooks;
  hooks.stop_requested = [&] { return opts.stop && opts.stop->load(); };
  hooks.record_epoch = [&](const json& r) {
    ClipEpochStats e;
    e.epoch = r["epoch"];
    e.step = r["step"];
    e.train_loss = r["train_loss"];
    e.val_loss = r["val_loss"].is_number() ? r["val_loss"].get<double>() : -1;
    e.val_recall_at_1 = r.value("val_recall_at_1", json()).is_number() ? r["val_recall_at_1"].get<double>() : -1;
    e.logit_scale = r["logit_scale"];
    e.lr = r["lr"];
    e.seconds = r["elapsed_s"];
    result.epochs.push_back(e);
  };
  TrainingLoop loop(objective, optimizer, model->parameters(), schedule, lo, hooks, log, parallel);
  const auto train_started = Clock::now();
  TrainerState state;
  if (!loop.run(state)) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    result.steps = state.step;
    return result;  // finished = false
  }
  result.steps = state.step;
  result.train_seconds = seconds_since(train_started);
  result.train_recall_at_1 =
      evaluate_clip(*model, processor, train, batch, kTrainRecallPairs, device, bf16, false, parallel).recall_at_1;
  if (!writer) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    parallel.barrier();  // returns once rank 0 has written OUT
    result.finished = true;
    result.model = model;
    return result;
  }

  // 5. the directory
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
         {"val_recall_pairs", std::min(result.val_images, ClipTraining::kMaxRecallPairs)},  // recall depends on the pool size
         {"train_recall_at_1", result.train_recall_at_1},
         {"train_recall_pairs", std::min(result.train_images, kTrainRecallPairs)},
         {"logit_scale", last.logit_scale}}},
       {"epochs", epochs},
       {"seconds", {{"prepare", result.preprocess_seconds}, {"train", result.train_seconds}}},
       {"threads", torch::get_num_threads()},
       {"device", opts.runtime.device},
       {"dtype", bf16 ? "bf16 autocast" : "f32"}});
  replace_directory(tmp, opts.out);
  parallel.barrier();
  result.finished = true;
  result.model = model;
  return result;
}

}  // namespace clipcap
