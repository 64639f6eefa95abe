#include "train/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_util.h"
#include "common/progress.h"
#include "common/sha256.h"
#include "data/embedding_dataset.h"
#include "model/captioner.h"
#include "model/sentencepiece_tokenizer.h"
#include "train/bf16_autocast.h"
#include "train/caption_batches.h"
#include "train/caption_objective.h"
#include "train/freeze_policy.h"
#include "train/lr_schedule.h"
#include "train/optimizer.h"
#include "train/trainer_state.h"

namespace fs = std::filesystem;

namespace clipcap {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// What train_config.json records besides the config: the inputs actually used.
struct RunInputs {
  std::string data_dir, clip_dir, text_dir;
};

std::string resolve_clip_dir(const TrainConfig& cfg, const EmbeddingDataset& ds) {
  const std::string dataset_clip = ds.meta().value("clip", nlohmann::json::object()).value("dir", std::string());
  std::string dir = cfg.clip_model;
  if (dir.empty() || !fs::is_directory(dir)) {
    if (!dataset_clip.empty() && fs::is_directory(dataset_clip)) return dataset_clip;
    throw Error("clip_model '" + (dir.empty() ? dataset_clip : dir) +
                "' is not a directory: pass --clip-model with the HF CLIP directory the dataset " + ds.dir() +
                " was embedded with");
  }
  return dir;
}

void check_clip_matches_dataset(const std::string& clip_dir, const EmbeddingDataset& ds) {
  const std::string want = ds.meta().value("clip", nlohmann::json::object()).value("config_sha256", std::string());
  if (want.empty()) return;
  const std::string got = sha256_hex(read_file(clip_dir + "/config.json"));
  if (got != want)
    throw Error(clip_dir + "/config.json: not the CLIP model the dataset " + ds.dir() +
                " was embedded with (config hash differs; see its meta.json)");
}

CaptionTextOptions text_options(const TrainConfig& cfg) {
  CaptionTextOptions t;
  t.strip = cfg.strip;
  t.lowercase = cfg.lowercase;
  t.max_tokens = cfg.max_len;
  return t;
}

// SentencePiece on the training captions (normalised as training will see them).
std::string train_caption_tokenizer(const TrainConfig& cfg, const EmbeddingDataset& ds, const std::string& run_dir) {
  const std::string dir = run_dir + "/tokenizer";
  if (fs::exists(dir + "/tokenizer.model")) return dir;  // a resumed set-up that got this far
  fs::create_directories(dir);
  const std::string corpus = dir + "/captions.txt";
  {
    std::ofstream out(corpus);
    CaptionTextOptions t = text_options(cfg);
    for (int64_t row : ds.rows("train"))
      for (const auto& c : ds.entries()[row].captions) {
        std::string s = normalize_caption(c, t);
        if (!s.empty()) out << s << "\n";
      }
    if (!out) throw Error(corpus + ": cannot write the caption corpus");
  }
  SentencePieceTrainOptions sp;
  sp.input = corpus;
  sp.model_prefix = dir + "/tokenizer";
  sp.vocab_size = cfg.decoder.vocab_size;
  sp.model_type = cfg.decoder.tokenizer_model_type;
  // Small caption corpora cannot always reach the asked vocabulary: let SentencePiece stop early.
  sp.extra["hard_vocab_limit"] = "false";
  train_sentencepiece(sp);
  fs::remove(corpus);
  return dir;
}

Captioner create_model(const TrainConfig& cfg, const EmbeddingDataset& ds, const std::string& run_dir, RunInputs& in) {
  in.clip_dir = resolve_clip_dir(cfg, ds);
  check_clip_matches_dataset(in.clip_dir, ds);
  CaptionerCreateOptions create;
  create.prefix_input = ds.meta().value("embedding", nlohmann::json::object()).value("kind", std::string("pooler_output"));
  create.normalize_prefix_input = cfg.normalize_prefix_input;
  torch::manual_seed(cfg.seed);
  if (cfg.decoder.enabled) {
    in.text_dir = train_caption_tokenizer(cfg, ds, run_dir);
    auto tok = load_tokenizer(in.text_dir);
    GPT2Config g;
    g.vocab_size = tok->vocab_size();
    g.n_embd = cfg.decoder.n_embd;
    g.n_layer = cfg.decoder.n_layer;
    g.n_head = cfg.decoder.n_head;
    g.n_positions = cfg.ep_len + cfg.max_len;
    g.bos_token_id = tok->bos_id() >= 0 ? tok->bos_id() : tok->eos_id();
    g.eos_token_id = tok->eos_id();
    g.embd_pdrop = g.attn_pdrop = g.resid_pdrop = cfg.decoder.dropout;
    torch::manual_seed(cfg.seed);
    return Captioner::create_with_new_decoder(in.clip_dir, g, in.text_dir, mapping_config(cfg), create);
  }
  if (cfg.text_model.empty() || !fs::is_directory(cfg.text_model))
    throw Error("text_model '" + cfg.text_model +
                "' is not a directory: pass --text-model with an HF GPT-2 directory (config.json, weights, vocab.json, "
                "merges.txt), or configure decoder.from_scratch");
  in.text_dir = cfg.text_model;
  return Captioner::create(in.clip_dir, in.text_dir, mapping_config(cfg), create);
}

// Token-weighted mean loss over `examples` (eval mode, no dropout, no gradients).
double mean_loss(Captioner& cap, const std::vector<CaptionExample>& examples, const torch::Tensor& embeddings,
                 int64_t batch_size, bool autocast) {
  if (examples.empty()) return kNaN;
  torch::NoGradGuard no_grad;
  std::vector<int64_t> order(examples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  double sum = 0;
  int64_t tokens = 0;
  for (size_t b = 0; b < order.size(); b += batch_size) {
    CaptionBatch batch = collate(examples, order, b, std::min(order.size(), b + batch_size), embeddings);
    Bf16Autocast ac(autocast);
    sum += caption_token_losses(cap, batch).sum().item<double>();
    tokens += batch.n_tokens;
  }
  return sum / static_cast<double>(tokens);
}

nlohmann::json sample_captions(Captioner& cap, const EmbeddingDataset& ds, const torch::Tensor& embeddings,
                               const std::vector<int64_t>& rows) {
  nlohmann::json out = nlohmann::json::array();
  if (rows.empty()) return out;
  auto captions = cap.caption_embeddings(embeddings.index_select(0, torch::tensor(rows, torch::kLong)), cap.config().decoding);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& e = ds.entries()[rows[i]];
    out.push_back({{"image", e.image},
                   {"caption", captions[i]},
                   {"reference", e.captions.empty() ? std::string() : e.captions.front()}});
  }
  return out;
}

nlohmann::json number_or_null(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

// metrics.jsonl keeps the epochs up to `epochs` (a resumed run drops lines an interrupted one
// wrote after its checkpoint, so no epoch is logged twice).
void truncate_metrics(const std::string& path, int64_t epochs) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;  // a torn last line
    if (j.value("epoch", int64_t{0}) <= epochs) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

void append_line(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path, std::ios::app);
  out << j.dump() << "\n";
  out.flush();
  if (!out) throw Error(path + ": cannot append (disk full?)");
}

std::string fmt(double x, const char* spec = "%.4f") {
  if (!std::isfinite(x)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, spec, x);
  return buf;
}

}  // namespace

TrainResult train_captioner(const TrainOptions& opts) {
  std::ostream& log = opts.log ? *opts.log : std::cerr;
  const std::string run = opts.run_dir;
  if (run.empty()) throw Error("training needs a run directory (--out)");
  const std::string config_path = run + "/train_config.json", last_dir = run + "/last", best_dir = run + "/best";
  const std::string metrics_path = run + "/metrics.jsonl";

  TrainConfig cfg = opts.config;
  RunInputs in;
  in.data_dir = opts.data_dir;
  if (opts.resume) {
    if (!fs::exists(config_path)) throw Error(run + ": not a clipcap-train run directory (no train_config.json)");
    if (!fs::exists(last_dir + "/trainer_state.json"))
      throw Error(run + ": nothing to resume: no finished checkpoint in " + last_dir);
    auto j = read_json(config_path);
    cfg = TrainConfig::from_json(json_require<nlohmann::json>(j, "config", config_path), config_path + ": config");
    in.data_dir = json_require<std::string>(j, "data", config_path);
    in.clip_dir = json_value<std::string>(j, "clip_dir", "", config_path);
    in.text_dir = json_value<std::string>(j, "text_dir", "", config_path);
  } else if (fs::exists(config_path)) {
    throw Error(run + ": already holds a training run; resume it with --resume " + run + ", or choose another --out");
  }
  EmbeddingDataset ds(in.data_dir);
  const torch::Tensor embeddings = ds.embeddings();  // (N, Dc) float32

  fs::create_directories(run);
  std::optional<Captioner> cap;
  if (opts.resume) {
    cap.emplace(Captioner::load(last_dir));
  } else {
    cap.emplace(create_model(cfg, ds, run, in));
    DecodeOptions dec = cap->config().decoding;
    dec.max_len = cfg.max_len;
    cap->set_default_decoding(dec);
    write_json_atomic(config_path, {{"config", cfg.to_json()},
                                    {"data", in.data_dir},
                                    {"clip_dir", in.clip_dir},
                                    {"text_dir", in.text_dir},
                                    {"tool", "clipcap-train"},
                                    {"tool_version", CLIPCAP_VERSION}});
  }
  if (cap->config().legacy) throw Error(last_dir + ": a legacy (upstream) model cannot be trained further");
  if (cap->config().mapping.input_size != ds.dim())
    throw Error(in.data_dir + ": embeddings have " + std::to_string(ds.dim()) + " dimensions, the model's mapping takes " +
                std::to_string(cap->config().mapping.input_size));

  const CaptionTextOptions text = text_options(cfg);
  const auto train = make_caption_examples(ds, "train", cap->tokenizer(), text);
  const auto val = make_caption_examples(ds, "val", cap->tokenizer(), text);
  if (train.empty()) throw Error(in.data_dir + ": the train split has no captions to train on");
  std::vector<int64_t> sample_rows = ds.rows("val");
  if (sample_rows.empty()) sample_rows = ds.rows("train");
  if (static_cast<int64_t>(sample_rows.size()) > cfg.val_samples) sample_rows.resize(cfg.val_samples);

  const std::string policy = cfg.decoder.enabled ? "full" : cfg.freeze;  // a new decoder must learn everything
  auto params = apply_freeze_policy(*cap, policy);
  auto optimizer = make_optimizer(cfg, params);

  const int64_t B = cfg.batch_size();
  const int64_t batches = (static_cast<int64_t>(train.size()) + B - 1) / B;           // micro-batches per epoch
  const int64_t steps_per_epoch = (batches + cfg.grad_accum - 1) / cfg.grad_accum;
  const LrSchedule schedule = LrSchedule::from_config(cfg, steps_per_epoch);
  const bool autocast = cfg.autocast == "bf16";

  TrainerState st;
  if (opts.resume) {
    st = load_trainer_state(last_dir, *optimizer);
    truncate_metrics(metrics_path, st.epoch);
    log << "clipcap-train: resuming " << run << " at epoch " << st.epoch + 1 << ", batch " << st.batch_in_epoch << "\n";
  } else {
    torch::manual_seed(cfg.seed + 1);  // dropout stream, independent of how the model was initialised
    fs::remove(metrics_path);
  }

  auto save_last = [&] {
    cap->save(last_dir, [&](const std::string& staging) { save_trainer_state(staging, st, *optimizer); });
  };

  TrainResult result;
  result.train_loss = result.val_loss = kNaN;
  int64_t session_steps = 0;
  auto stop_requested = [&] {
    return (opts.stop && opts.stop->load()) || (opts.stop_after_steps >= 0 && session_steps >= opts.stop_after_steps);
  };

  for (; st.epoch < cfg.epochs; ++st.epoch) {
    const auto order = shuffled_order(static_cast<int64_t>(train.size()), cfg.seed, st.epoch);
    cap->mapping()->train();
    cap->gpt2()->train(policy != "mapping-only");
    ProgressOptions po;
    po.unit = "batch";
    po.out = &log;
    po.tty = opts.progress_tty;
    Progress progress("epoch " + std::to_string(st.epoch + 1) + "/" + std::to_string(cfg.epochs), batches, po);
    progress.skip(st.batch_in_epoch);
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t b = st.batch_in_epoch; b < batches; ++b) {
      const bool group_start = b % cfg.grad_accum == 0;
      const bool group_end = (b + 1) % cfg.grad_accum == 0 || b + 1 == batches;
      if (group_start) {
        clear_gradients(*optimizer);  // the backward writes them: no zero fill, no add
        set_lr(*optimizer, schedule.at(st.step));
        st.epoch_lr_max = std::max(st.epoch_lr_max, current_lr(*optimizer));
      }
      CaptionBatch batch = collate(train, order, static_cast<size_t>(b * B),
                                   std::min(train.size(), static_cast<size_t>((b + 1) * B)), embeddings);
      torch::Tensor loss;
      {
        Bf16Autocast ac(autocast);
        loss = caption_loss(*cap, batch);
      }
      const int64_t group_size = std::min<int64_t>(cfg.grad_accum, batches - (b - b % cfg.grad_accum));
      (loss / static_cast<double>(group_size)).backward();
      const double l = loss.item<double>();
      if (!std::isfinite(l))
        throw Error("training diverged: loss is " + std::to_string(l) + " at epoch " + std::to_string(st.epoch + 1) +
                    ", step " + std::to_string(st.step) + " (lower lr, or check the data)");
      st.epoch_loss_sum += l * static_cast<double>(batch.n_tokens);
      st.epoch_tokens += batch.n_tokens;
      if (group_end) {
        if (cfg.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, cfg.grad_clip);
        optimizer->step();
        ++st.step;
        ++session_steps;
      }
      st.batch_in_epoch = b + 1;
      progress.set_note("loss " + fmt(l) + " | lr " + fmt(schedule.at(st.step), "%.2e"));
      progress.advance(1);
      if (group_end && b + 1 < batches && stop_requested()) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        st.epoch_seconds += secs;
        st.elapsed_seconds += secs;
        progress.finish();
        save_last();
        result.epochs_done = st.epoch;
        result.steps_done = st.step;
        return result;
      }
    }
    progress.finish();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    st.epoch_seconds += secs;
    st.elapsed_seconds += secs;

    cap->mapping()->eval();
    cap->gpt2()->eval();
    const double train_loss = st.epoch_loss_sum / static_cast<double>(st.epoch_tokens);
    const double val_loss = mean_loss(*cap, val, embeddings, B, autocast);
    nlohmann::json line = {{"epoch", st.epoch + 1},
                           {"step", st.step},
                           {"train_loss", train_loss},
                           {"val_loss", number_or_null(val_loss)},
                           {"lr", current_lr(*optimizer)},  // the last one used
                           {"lr_max", st.epoch_lr_max},
                           {"tokens_per_s", st.epoch_seconds > 0 ? st.epoch_tokens / st.epoch_seconds : 0.0},
                           {"elapsed_s", st.elapsed_seconds},
                           {"samples", sample_captions(*cap, ds, embeddings, sample_rows)}};
    append_line(metrics_path, line);
    log << "epoch " << st.epoch + 1 << "/" << cfg.epochs << ": train loss " << fmt(train_loss) << ", val loss "
        << fmt(val_loss) << ", lr " << fmt(line["lr"].get<double>(), "%.2e") << ", "
        << fmt(line["tokens_per_s"].get<double>(), "%.0f") << " tok/s";
    if (!line["samples"].empty()) log << "; \"" << line["samples"][0]["caption"].get<std::string>() << "\"";
    log << "\n";

    // Selection falls back on the train loss when the dataset has no val split.
    const double score = std::isfinite(val_loss) ? val_loss : train_loss;
    const bool improved = score < st.best_val_loss;
    st.epoch_loss_sum = 0;
    st.epoch_tokens = 0;
    st.epoch_seconds = 0;
    st.epoch_lr_max = 0;
    st.batch_in_epoch = 0;
    const int64_t finished = st.epoch + 1;
    if (improved) {
      st.best_val_loss = score;
      cap->save(best_dir);
    }
    result.train_loss = train_loss;
    result.val_loss = val_loss;
    result.best_val_loss = st.best_val_loss;
    result.epochs_done = finished;
    result.steps_done = st.step;
    // The state saved says "epoch finished", so it is written after the counters move on.
    st.epoch = finished;
    const bool last_epoch = finished == cfg.epochs;
    if (last_epoch || finished % cfg.save_every == 0 || stop_requested()) save_last();
    st.epoch = finished - 1;  // the loop's ++ brings it back
    if (!last_epoch && stop_requested()) {
      result.epochs_done = finished;
      return result;
    }
  }
  result.finished = true;
  return result;
}

}  // namespace clipcap
