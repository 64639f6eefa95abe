#include "train/clip_train_command.h"

#include <functional>
#include <iostream>
#include <memory>
#include <vector>

#include "common/cli_flags.h"
#include "common/error.h"
#include "common/progress.h"
#include "data/source_flags.h"
#include "train/clip_trainer.h"
#include "train/distributed_flags.h"

namespace clipcap {
namespace {

// Everything the flags write into; owned by the callback, so it lives as long as the app.
struct ClipCommandState {
  ClipTrainOptions opts;
  SourceFlags source;
  std::string config_path;
  ClipTrainConfig flags;  // the override flags' values (shown as defaults in --help)
  DistributedFlags dist;
  std::vector<std::string> command_line;
  int* exit_code = nullptr;
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
  opts.source = st.source.source_options();
  opts.split = st.source.split;

  if (auto code = launch_if_asked(st.dist, st.command_line, "clipcap-train clip")) {
    *st.exit_code = *code;
    return;
  }
  std::unique_ptr<DataParallel> parallel = join_if_rank(st.dist, opts.runtime);
  opts.parallel = parallel.get();
  apply_runtime(opts.runtime);
  ClipTrainResult r = train_clip(opts);
  if (parallel && parallel->rank() > 0) return;  // rank 0 reports
  const ClipEpochStats& last = r.epochs.back();
  std::cerr << "clipcap-train clip: wrote " << r.out << ": " << r.steps << " steps in "
            << format_duration(r.train_seconds) << " (+" << format_duration(r.preprocess_seconds)
            << " preparing); train loss " << last.train_loss;
  if (last.val_recall_at_1 >= 0) std::cerr << ", val loss " << last.val_loss << ", val recall@1 " << last.val_recall_at_1;
  std::cerr << ", train recall@1 " << r.train_recall_at_1 << "\n";
}

}  // namespace

void add_clip_train_command(CLI::App& app, const std::vector<std::string>& command_line, int& exit_code) {
  auto st = std::make_shared<ClipCommandState>();
  st->command_line = command_line;
  st->exit_code = &exit_code;
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

  add_caption_source_flags(*cmd, st->source,
                           "Data (as clipcap-data build: use the same values so held-out images stay unseen)");

  // Overrides of --config fields, one row each; --help shows the built-in defaults.
  ClipCommandState* state = st.get();
  auto over = [&](const std::string& flag, const std::string& help, auto field) {
    CLI::Option* opt = cmd->add_option(flag, field(state->flags), help)->capture_default_str()->group(
        "Overrides of --config fields");
    state->overrides.emplace_back(opt, [state, field](ClipTrainConfig& c) { field(c) = field(state->flags); });
  };
  using C = ClipTrainConfig;
  over("--epochs", "training.epochs", [](C& c) -> auto& { return c.training.epochs; });
  over("--batch-size", "training.batch_size (pairs per step)", [](C& c) -> auto& { return c.training.batch_size; });
  over("--lr", "training.lr (peak AdamW learning rate)", [](C& c) -> auto& { return c.training.lr; });
  over("--warmup", "training.warmup (fraction of the steps)", [](C& c) -> auto& { return c.training.warmup; });
  over("--weight-decay", "training.weight_decay", [](C& c) -> auto& { return c.training.weight_decay; });
  over("--training-seed", "training.seed (weights, shuffling, augmentation; --seed is the split's)",
       [](C& c) -> auto& { return c.training.seed; });
  over("--shift", "training.shift (random translation, pixels)", [](C& c) -> auto& { return c.training.shift; });
  over("--scale", "training.scale (random zoom in [1 - scale, 1 + scale])", [](C& c) -> auto& { return c.training.scale; });
  over("--blur", "training.blur (probability of a 3 x 3 blur)", [](C& c) -> auto& { return c.training.blur; });
  over("--posterize", "training.posterize (probability of 3-5 bits per colour channel)",
       [](C& c) -> auto& { return c.training.posterize; });
  over("--image-size", "vision.image_size", [](C& c) -> auto& { return c.vision.image_size; });
  over("--patch-size", "vision.patch_size", [](C& c) -> auto& { return c.vision.patch_size; });
  over("--context-length", "text.max_position_embeddings", [](C& c) -> auto& { return c.text.max_position_embeddings; });
  over("--projection-dim", "projection_dim", [](C& c) -> auto& { return c.projection_dim; });
  over("--vocab-size", "tokenizer.vocab_size", [](C& c) -> auto& { return c.tokenizer.vocab_size; });

  add_runtime_flags(*cmd, o.runtime);
  add_distributed_flags(*cmd, st->dist);
  cmd->footer(
      "Trains on the train split only and reports val loss and recall@1 per epoch; writes config.json, "
      "model.safetensors, preprocessor_config.json, vocab.json, merges.txt and training.json (f32 weights; "
      "--dtype bf16 runs the towers under bf16 autocast, much faster on CPUs with AVX512-BF16/AMX). "
      "There is no resume: an interrupted run leaves only OUT.tmp (never a complete-looking OUT), which the next "
      "run deletes.");
  cmd->callback([st] { run(*st); });
}

}  // namespace clipcap
