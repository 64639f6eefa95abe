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
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_util.h"
#include "common/sha256.h"
#include "data/embedding_dataset.h"
#include "model/captioner.h"
#include "model/tokenizers/sentencepiece_tokenizer.h"
#include "train/caption_training.h"
#include "train/freeze_policy.h"
#include "train/lr_schedule.h"
#include "train/optimizer.h"
#include "train/trainer_state.h"
#include "train/training_loop.h"

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

// SentencePiece on the training captions (normalised as training will see them).
std::string train_caption_tokenizer(const TrainConfig& cfg, const EmbeddingDataset& ds, const std::string& run_dir) {
  const std::string dir = run_dir + "/tokenizer";
  if (fs::exists(dir + "/tokenizer.model")) return dir;  // a resumed set-up that got this far
  fs::create_directories(dir);
  const std::string corpus = dir + "/captions.txt";
  {
    std::ofstream out(corpus);
    CaptionTextOptions t = caption_text_options(cfg);
    int64_t lines = 0;
    for (int64_t row : ds.rows("train"))
      for (const auto& c : ds.entries()[row].captions) {
        std::string s = normalize_caption(c, t);
        if (!s.empty()) out << s << "\n", ++lines;
      }
    if (!out) throw Error(corpus + ": cannot write the caption corpus");
    if (lines == 0)
      throw Error(ds.dir() + ": the train split has no captions (" + std::to_string(ds.rows("train").size()) +
                  " train images): nothing to train the tokenizer on");
  }
  // Written under another name and renamed when complete: a crash or a full disk mid-write
  // leaves no tokenizer.model that a rerun would take as finished.
  SentencePieceTrainOptions sp;
  sp.input = corpus;
  sp.model_prefix = dir + "/tokenizer.partial";
  sp.vocab_size = cfg.decoder.vocab_size;
  sp.model_type = cfg.decoder.tokenizer_model_type;
  // Small caption corpora cannot always reach the asked vocabulary: let SentencePiece stop early.
  sp.extra["hard_vocab_limit"] = "false";
  train_sentencepiece(sp);
  if (fs::exists(dir + "/tokenizer.partial.vocab")) fs::rename(dir + "/tokenizer.partial.vocab", dir + "/tokenizer.vocab");
  fs::rename(dir + "/tokenizer.partial.model", dir + "/tokenizer.model");
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

// metrics.jsonl keeps the epochs up to `epochs` (a resumed run drops lines an interrupted one
// wrote after its checkpoint, so no epoch is logged twice).
// Keeps the records a checkpoint has reached (`key` at most `limit`): on resume, the lines written
// after the checkpoint are written again.
void truncate_records(const std::string& path, const char* key, int64_t limit) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;  // a torn last line
    if (j.value(key, int64_t{0}) <= limit) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

void append_line(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path, std::ios::app);
  out << j.dump() << "\n";
  out.flush();
  if (!out) throw Error(path + ": cannot append (disk full?)");
}

}  // namespace

TrainResult train_captioner(const TrainOptions& opts) {
  DataParallel& parallel = opts.parallel ? *opts.parallel : single_process();
  const bool writer = parallel.writes_outputs();  // rank 0 sets the run up and writes; the others read
  std::ostream& log = opts.log ? *opts.log : std::cerr;
  const std::string run = opts.run_dir;
  if (run.empty()) throw Error("training needs a run directory (--out)");
  const std::string config_path = run + "/train_config.json", last_dir = run + "/last", best_dir = run + "/best";
  const std::string metrics_path = run + "/metrics.jsonl";
  const std::string steps_path = run + "/steps.jsonl";

  TrainConfig cfg = opts.config;
  RunInputs in;
  in.data_dir = opts.data_dir;
  // What a crash can leave: a kill between the two renames of a checkpoint save leaves the
  // previous complete one as last.old (moved back here); a crash before the first save leaves a
  // run with no checkpoint, which starts over (the same command, or --resume).
  if (writer && fs::exists(config_path)) {
    for (const std::string& dir : {last_dir, best_dir})
      if (recover_replaced_directory(dir)) log << "clipcap-train: " << dir << ".old was the last complete save: using it\n";
  }
  const bool have_checkpoint = fs::exists(last_dir + "/trainer_state.json");
  const bool stopped_before_first_save = fs::exists(config_path) && !have_checkpoint;
  if (stopped_before_first_save && writer) {
    log << "clipcap-train: " << run << " stopped before its first checkpoint: training starts over\n";
    std::error_code ec;
    for (const std::string& leftover : {last_dir, last_dir + ".tmp", last_dir + ".old", best_dir, best_dir + ".tmp", metrics_path, steps_path})
      fs::remove_all(leftover, ec);
    if (!opts.resume) fs::remove(config_path, ec);
  }
  const bool resume = opts.resume && have_checkpoint;
  if (opts.resume) {
    if (!fs::exists(config_path)) throw Error(run + ": not a clipcap-train run directory (no train_config.json)");
    auto j = read_json(config_path);
    cfg = TrainConfig::from_json(json_require<nlohmann::json>(j, "config", config_path), config_path + ": config");
    in.data_dir = json_require<std::string>(j, "data", config_path);
    in.clip_dir = json_value<std::string>(j, "clip_dir", "", config_path);
    in.text_dir = json_value<std::string>(j, "text_dir", "", config_path);
    if (!resume) fs::remove(config_path);  // rewritten below, as by a first run
    if (opts.log_every) cfg.log_every = *opts.log_every;  // how the run is logged, not what it learns
  } else if (writer && fs::exists(config_path)) {
    throw Error(run + ": already holds a training run; resume it with --resume " + run + ", or choose another --out");
  }
  parallel.per_rank(cfg.batch_size(), "batch_size");  // before anything is written
  EmbeddingDataset ds(in.data_dir);

  std::optional<Captioner> cap;
  if (resume) {
    cap.emplace(Captioner::load(last_dir));
  } else {
    // Rank 0 first: it trains a new decoder's tokenizer into the run directory the others then read
    // (the run directory is shared by all ranks, like the data).
    if (!writer) parallel.barrier();
    if (writer) fs::create_directories(run);
    cap.emplace(create_model(cfg, ds, run, in));
    DecodeOptions dec = cap->config().decoding;
    dec.max_len = cfg.max_len;
    cap->set_default_decoding(dec);
    if (writer) {
      write_json_atomic(config_path, {{"config", cfg.to_json()},
                                      {"data", in.data_dir},
                                      {"clip_dir", in.clip_dir},
                                      {"text_dir", in.text_dir},
                                      {"tool", "clipcap-train"},
                                      {"tool_version", CLIPCAP_VERSION}});
      parallel.barrier();
    }
  }
  if (cap->config().legacy) throw Error(last_dir + ": a legacy (upstream) model cannot be trained further");
  if (cap->config().mapping.input_size != ds.dim())
    throw Error(in.data_dir + ": embeddings have " + std::to_string(ds.dim()) + " dimensions, the model's mapping takes " +
                std::to_string(cap->config().mapping.input_size));

  const std::string policy = cfg.decoder.enabled ? "full" : cfg.freeze;  // a new decoder must learn everything
  CaptionTraining objective(*cap, ds, cfg, /*train_decoder=*/policy != "mapping-only", parallel);
  auto params = apply_freeze_policy(*cap, policy);
  parallel.broadcast(params);  // every rank starts from rank 0's weights, as DDP does
  auto optimizer = make_optimizer(cfg, params);

  TrainerState st;
  if (resume) {
    st = load_trainer_state(last_dir, *optimizer);
    if (writer) truncate_records(metrics_path, "epoch", st.epoch);
    if (writer) truncate_records(steps_path, "step", st.step);
    if (writer)
      log << "clipcap-train: resuming " << run << " at epoch " << st.epoch + 1 << ", batch " << st.batch_in_epoch << "\n";
  } else {
    torch::manual_seed(cfg.seed + 1);  // dropout stream, independent of how the model was initialised
    if (writer) fs::remove(metrics_path);
    if (writer) fs::remove(steps_path);
  }
  if (parallel.rank() > 0)  // its own dropout masks (the checkpoint holds rank 0's generator)
    torch::manual_seed(cfg.seed + 1 + 1000003ULL * static_cast<uint64_t>(parallel.rank()) + static_cast<uint64_t>(st.step));
  if (writer && parallel.world_size() > 1)
    log << "clipcap-train: " << parallel.world_size() << " ranks, global batch " << cfg.batch_size() << " = "
        << parallel.world_size() << " x " << cfg.batch_size() / parallel.world_size() << "\n";

  TrainingLoopOptions lo;
  lo.epochs = cfg.epochs;
  lo.grad_accum = cfg.grad_accum;
  lo.grad_clip = cfg.grad_clip;
  lo.save_every = cfg.save_every;
  lo.log_every = cfg.log_every;
  lo.progress.out = &log;
  lo.progress.tty = opts.progress_tty;
  const int64_t steps_per_epoch = (objective.batches_per_epoch() + cfg.grad_accum - 1) / cfg.grad_accum;

  int64_t session_steps = 0;
  const int64_t steps_before = st.step;
  TrainingHooks hooks;
  hooks.stop_requested = [&] {
    session_steps = st.step - steps_before;
    if (opts.step_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(opts.step_delay_ms));
    return (opts.stop && opts.stop->load()) || (opts.stop_after_steps >= 0 && session_steps >= opts.stop_after_steps);
  };
  hooks.save_checkpoint = [&](const TrainerState& state) {
    cap->save(last_dir, [&](const std::string& staging) { save_trainer_state(staging, state, *optimizer); });
  };
  hooks.save_best = [&] { cap->save(best_dir); };
  hooks.record_epoch = [&](const nlohmann::json& line) { append_line(metrics_path, line); };
  hooks.record_step = [&](const nlohmann::json& line) { append_line(steps_path, line); };
  TrainingLoop loop(objective, *optimizer, params, LrSchedule::from_config(cfg, steps_per_epoch), lo, hooks, log,
                    parallel);

  TrainResult result;
  result.finished = loop.run(st);
  parallel.barrier();  // every rank returns once rank 0's checkpoint is written
  result.epochs_done = st.epoch;
  result.steps_done = st.step;
  result.best_val_loss = st.best_val_loss;
  const nlohmann::json& last = loop.last_epoch();
  const auto loss_of = [&](const char* key) {
    return last.is_object() && last[key].is_number() ? last[key].get<double>() : kNaN;
  };
  result.train_loss = loss_of("train_loss");
  result.val_loss = loss_of("val_loss");
  return result;
}

}  // namespace clipcap
