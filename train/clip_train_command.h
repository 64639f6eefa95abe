// `clipcap-train clip`: contrastive CLIP pretraining from scratch (train/clip_trainer.h), as a CLI11
// subcommand that main_train.cpp registers.
//
//   CLI::App app{"clipcap-train"};
//   int exit_code = 0;
//   clipcap::add_clip_train_command(app, command_line, exit_code);   // subcommand "clip": flags + callback
//   // parse; the callback runs train_clip and throws clipcap::Error on bad input (run_main reports it)
//
//   clipcap-train clip --format karpathy --captions dataset_emoji.json --images images
//       --config configs/clip-emoji-tiny.json --out models/clip-emoji [--epochs N ...] [--threads N]
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace clipcap {

// Registers "clip" on app. The callback applies --threads/--device (apply_runtime), trains, writes
// --out and prints a summary on stderr; with --nproc-per-node it starts the ranks with
// `command_line` (main's argv) and sets exit_code to theirs.
void add_clip_train_command(CLI::App& app, const std::vector<std::string>& command_line, int& exit_code);

}  // namespace clipcap
