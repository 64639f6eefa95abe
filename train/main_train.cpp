// clipcap-train: train the CLIP -> GPT-2 prefix captioner (and, with `clip`, a CLIP from scratch).
//
//   clipcap-train --config configs/small.json --data DATA_DIR --out RUN_DIR
//       [--clip-model DIR] [--text-model DIR] [--epochs N] [--lr X] ... [--set key=value]...
//   clipcap-train --resume RUN_DIR
//   clipcap-train clip ...              (see clipcap-train clip --help)
//   clipcap-train --nproc-per-node 2 --config ... --data ... --out ...   (data-parallel ranks; also
//       --nnodes/--node-rank/--master-addr for several machines, or RANK/WORLD_SIZE/... from torchrun)
//
// Every config field has a flag of its own name (--batch-size-exp, --freeze, ...); --set reaches
// the rest (--set decoder.n_layer=4). Ctrl-C saves a checkpoint at the next step and exits 130;
// --resume continues from it. Exit codes: 0 done, 1 error, 2 usage error, 130 interrupted.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "common/cli_flags.h"
#include "common/cli_main.h"
#include "common/error.h"
#include "common/interrupt.h"
#include "common/json_util.h"
#include "common/runtime.h"
#include "train/clip_train_command.h"
#include "train/distributed_flags.h"
#include "train/trainer.h"

namespace {

const char* kProgram = "clipcap-train";

std::string flag_name(std::string key) {
  for (char& c : key)
    if (c == '_') c = '-';
  return "--" + key;
}

int run(int argc, char** argv) {
  CLI::App app{"Train a clipcap captioner on a clipcap-data embedding dataset.", kProgram};
  app.require_subcommand(0, 1);

  std::string config_file, data_dir, out_dir, resume_dir;
  std::vector<std::string> sets;
  clipcap::RuntimeOptions runtime;
  app.add_option("--config", config_file, "training config JSON (configs/small.json, large.json, emoji-tiny.json)");
  app.add_option("--data", data_dir, "clipcap-data dataset directory (train and val splits are used)");
  app.add_option("-o,--out", out_dir, "run directory (default: the config's weights_dir)");
  app.add_option("--resume", resume_dir, "continue the run in this directory from its last/ checkpoint");
  app.add_option("--set", sets, "override any config field: key=value (decoder.n_layer=4 for the decoder section)");

  // One flag per top-level config field, named after it; kept as text and applied like --set.
  const nlohmann::json defaults = clipcap::train_config_defaults();
  std::map<std::string, std::string> field_flags;
  for (auto it = defaults.begin(); it != defaults.end(); ++it) {
    if (it.value().is_object()) continue;
    app.add_option(flag_name(it.key()), field_flags[it.key()], "config field '" + it.key() + "' (default " +
                                                                    it.value().dump() + ")")
        ->group("Config fields");
  }
  clipcap::add_runtime_flags(app, runtime);
  clipcap::DistributedFlags dist;
  clipcap::add_distributed_flags(app, dist);
  const std::vector<std::string> command_line(argv, argv + argc);
  int clip_exit_code = 0;
  clipcap::add_clip_train_command(app, command_line, clip_exit_code);
  app.footer("Outputs in RUN_DIR: train_config.json, metrics.jsonl, last/ and best/ (model directories clipcap-infer "
             "and clipcap-eval load as they are).");
  if (auto code = clipcap::parse_flags(app, argc, argv)) return *code;
  if (!app.get_subcommands().empty()) return clip_exit_code;  // `clip` ran in its callback
  if (auto code = clipcap::launch_if_asked(dist, command_line, kProgram)) return *code;

  const torch::ScalarType train_dtype = clipcap::parse_dtype(runtime.dtype);
  if (train_dtype != torch::kFloat32 && train_dtype != torch::kBFloat16)
    throw clipcap::Error("--dtype " + runtime.dtype + ": training runs in f32, or with bf16 autocast (--dtype bf16)");
  clipcap::TrainOptions opts;
  const bool resume = !resume_dir.empty();
  if (resume) {
    if (!config_file.empty() || !data_dir.empty() || !sets.empty())
      throw clipcap::Error("--resume continues a run with its own config and data; drop --config/--data/--set");
    for (const auto& [key, value] : field_flags) {
      if (value.empty()) continue;
      if (key != "log_every") throw clipcap::Error("--resume continues a run with its own config; drop " + flag_name(key));
      nlohmann::json cfg = clipcap::train_config_defaults();
      clipcap::apply_override(cfg, key + "=" + value);
      opts.log_every = clipcap::TrainConfig::from_json(cfg, "command line").log_every;
    }
    if (train_dtype != torch::kFloat32)
      throw clipcap::Error("--resume continues a run with its own config (its autocast field); drop --dtype");
    opts.run_dir = resume_dir;
    opts.resume = true;
  } else {
    if (data_dir.empty()) throw clipcap::Error("--data is required (a clipcap-data dataset directory)");
    nlohmann::json cfg = clipcap::train_config_defaults();
    if (!config_file.empty()) clipcap::merge_config(cfg, clipcap::read_json(config_file), config_file);
    for (const auto& [key, value] : field_flags)
      if (!value.empty()) clipcap::apply_override(cfg, key + "=" + value);
    for (const auto& s : sets) clipcap::apply_override(cfg, s);
    // --dtype bf16 is the config's `autocast: bf16` (weights, gradients and Adam stay f32), so the
    // flag every other tool takes does not go silently unused here.
    if (train_dtype == torch::kBFloat16) cfg["autocast"] = "bf16";
    opts.config = clipcap::TrainConfig::from_json(cfg, config_file.empty() ? "command line" : config_file);
    opts.data_dir = data_dir;
    opts.run_dir = out_dir.empty() ? opts.config.weights_dir : out_dir;
  }
  std::unique_ptr<clipcap::DataParallel> parallel = clipcap::join_if_rank(dist, runtime);
  opts.parallel = parallel.get();
  clipcap::apply_runtime(runtime);
  opts.stop = &clipcap::install_interrupt_handler(std::string(kProgram) +
                                                  ": interrupted: saving a checkpoint after this step");
  if (const char* n = std::getenv("CLIPCAP_TEST_STOP_AFTER_STEPS")) opts.stop_after_steps = std::atoll(n);
  if (const char* n = std::getenv("CLIPCAP_TEST_STEP_DELAY_MS")) opts.step_delay_ms = std::atoi(n);

  clipcap::TrainResult r = clipcap::train_captioner(opts);
  if (parallel && parallel->rank() > 0) return r.finished ? 0 : 130;  // rank 0 reports
  if (!r.finished) {
    std::cerr << kProgram << ": stopped after " << r.steps_done << " steps; checkpoint in " << opts.run_dir
              << "/last; continue with: " << kProgram << " --resume " << opts.run_dir << "\n";
    return 130;
  }
  std::cerr << kProgram << ": done: " << r.epochs_done << " epochs, " << r.steps_done << " steps; best val loss "
            << r.best_val_loss << "; models in " << opts.run_dir << "/best and " << opts.run_dir << "/last\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clipcap::run_main(kProgram, [&] { return run(argc, argv); });
}
