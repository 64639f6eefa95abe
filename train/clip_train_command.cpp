#include "train/clip_train_command.h"

#include <functional>
#include <iostream>
#include <memory>
#include <vector>

#include "common/cli_flags.h"
#include "common/error.h"
#include "common/progress.h"
#include "train/clip_trainer.h"

namespace clipcap {
namespace {

// Everything the flags write into; owned by the callback, so it lives as long as the app.
struct ClipCommandState {
  ClipTrainOptions opts;
  std::string config_path;
  std::string separator = ",";
  ClipTrainConfig flags;  // the override flags' values (shown as defaults in --help)
  // An override flag and how to copy its value into the config read from --config.
  std::vector<std::pair<CLI::Option*, std::function<void(ClipTrainConfig&)>>> overrides;
};

void run(ClipCommandState& st) {
  ClipTrainOptions opts = st.opts;
  std::string where = "clip training config (defaults)";
  if (!st.config_path.empty()) {
    opts.config = ClipTrainConfig::load(st.config_path);  // validated: errors name the file
    where = st.config_path;
  }
  bool overridden = false;
  for (auto& [opt, copy] : st.overrides)
    if (opt->count() > 0) copy(opts.config), overridden = true;
  if (overridden) where = "command-line flags over " + where;
  opts.config.validate(where);
  if (st.separator.size() != 1) throw Error("--csv-separator must be one character, got '" + st.separator + "'");
  opts.source.csv_separator = st.separator[0];

  apply_runtime(opts.runtime);
  ClipTrainResult r = train_clip(opts);
  const ClipEpochStats& last = r.epochs.back();
  std::cerr << "clipcap-train clip: wrote " << r.out << ": " << r.steps << " steps in "
            << format_duration(r.train_seconds) << " (+" << format_duration(r.preprocess_seconds)
            << " preparing); train loss " << last.train_loss;
  if (last.val_recall_at_1 >= 0) std::cerr << ", val loss " << last.val_loss << ", val recall@1 " << last.val_recall_at_1;
  std::cerr << ", train recall@1 " << r.train_recall_at_1 << "\n";
}

}  // namespace

void add_clip_train_command(CLI::App& app) {
  auto st = std::make_shared<ClipCommandState>();
  ClipTrainOptions& o = st->opts;
  CLI::App* cmd = app.add_subcommand("clip", "train an HF-format CLIP (vision + text towers) from scratch, contrastively");

  cmd->add_option("--captions", o.captions, "captions file (results.csv, dataset_*.json, captions_*.json, .jsonl, .csv)")
      ->required();
  cmd->add_option("--images", o.images, "directory the captions' image paths are relative to")->required();
  cmd->add_option("-o,--out", o.out, "output HF CLIP directory (written as OUT.tmp, then renamed)")->required();
  cmd->add_option("--config", st->config_path, "architecture + schedule JSON (e.g. configs/clip-emoji-tiny.json); "
                                              "default: the built-in emoji-tiny recipe")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--overwrite", o.overwrite, "replace an existing OUT");

  const std::string data = "Data (as clipcap-data build: use the same values so held-out images stay unseen)";
  cmd->add_option("--format", o.source.format, "flickr | karpathy | coco | jsonl | csv")->capture_default_str()->group(data);
  cmd->add_option("--image-column", o.source.image_column, "jsonl/csv: image path key")->capture_default_str()->group(data);
  cmd->add_option("--caption-column", o.source.caption_column, "jsonl/csv: caption key")->capture_default_str()->group(data);
  cmd->add_option("--split-column", o.source.split_column, "jsonl/csv: split key (optional)")->group(data);
  cmd->add_option("--csv-separator", st->separator, "csv: field separator (one character)")->capture_default_str()->group(data);
  cmd->add_flag("--lowercase", o.source.lowercase, "lower-case the captions")->group(data);
  cmd->add_option("--seed", o.split.seed, "split seed (not the training seed: see --training-seed)")
      ->capture_default_str()
      ->group(data);
  cmd->add_option("--train", o.split.train, "train fraction of images without a given split")->capture_default_str()->group(data);
  cmd->add_option("--val", o.split.val, "val fraction (the rest is test, never read)")->capture_default_str()->group(data);

  // Overrides of --config fields; --help shows the built-in defaults.
  const std::string g = "Overrides of --config fields";
  ClipTrainConfig& f = st->flags;
  auto over = [&](CLI::Option* opt, std::function<void(ClipTrainConfig&)> copy) {
    opt->capture_default_str()->group(g);
    st->overrides.emplace_back(opt, std::move(copy));
  };
  ClipCommandState* s = st.get();
  over(cmd->add_option("--epochs", f.training.epochs, "training.epochs"),
       [s](ClipTrainConfig& c) { c.training.epochs = s->flags.training.epochs; });
  over(cmd->add_option("--batch-size", f.training.batch_size, "training.batch_size (pairs per step)"),
       [s](ClipTrainConfig& c) { c.training.batch_size = s->flags.training.batch_size; });
  over(cmd->add_option("--lr", f.training.lr, "training.lr (peak AdamW learning rate)"),
       [s](ClipTrainConfig& c) { c.training.lr = s->flags.training.lr; });
  over(cmd->add_option("--warmup", f.training.warmup, "training.warmup (fraction of the steps)"),
       [s](ClipTrainConfig& c) { c.training.warmup = s->flags.training.warmup; });
  over(cmd->add_option("--weight-decay", f.training.weight_decay, "training.weight_decay"),
       [s](ClipTrainConfig& c) { c.training.weight_decay = s->flags.training.weight_decay; });
  over(cmd->add_option("--training-seed", f.training.seed, "training.seed (weights, shuffling, augmentation)"),
       [s](ClipTrainConfig& c) { c.training.seed = s->flags.training.seed; });
  over(cmd->add_option("--shift", f.training.shift, "training.shift (random translation, pixels)"),
       [s](ClipTrainConfig& c) { c.training.shift = s->flags.training.shift; });
  over(cmd->add_option("--image-size", f.vision.image_size, "vision.image_size"),
       [s](ClipTrainConfig& c) { c.vision.image_size = s->flags.vision.image_size; });
  over(cmd->add_option("--patch-size", f.vision.patch_size, "vision.patch_size"),
       [s](ClipTrainConfig& c) { c.vision.patch_size = s->flags.vision.patch_size; });
  over(cmd->add_option("--context-length", f.text.max_position_embeddings, "text.max_position_embeddings"),
       [s](ClipTrainConfig& c) { c.text.max_position_embeddings = s->flags.text.max_position_embeddings; });
  over(cmd->add_option("--projection-dim", f.projection_dim, "projection_dim"),
       [s](ClipTrainConfig& c) { c.projection_dim = s->flags.projection_dim; });
  over(cmd->add_option("--vocab-size", f.tokenizer.vocab_size, "tokenizer.vocab_size"),
       [s](ClipTrainConfig& c) { c.tokenizer.vocab_size = s->flags.tokenizer.vocab_size; });

  add_runtime_flags(*cmd, o.runtime);
  cmd->footer(
      "Trains on the train split only and reports val loss and recall@1 per epoch; writes config.json, "
      "model.safetensors, preprocessor_config.json, vocab.json, merges.txt and training.json (f32 weights; "
      "--dtype bf16 runs the towers under bf16 autocast, much faster on CPUs with AVX512-BF16/AMX). "
      "There is no resume: an interrupted run leaves only OUT.tmp (never a complete-looking OUT), which the next "
      "run deletes.");
  cmd->callback([st] { run(*st); });
}

}  // namespace clipcap
