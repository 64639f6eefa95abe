// Where a training run is, saved with its last/ checkpoint so --resume continues exactly.
//
//   clipcap::save_trainer_state(staging_dir, state, optimizer);   // inside Captioner::save's add_files
//   clipcap::TrainerState s = clipcap::load_trainer_state(run + "/last", optimizer);  // also restores the RNG
//
// Files (next to the model's own): optimizer.pt (libtorch's serialized optimizer: Adam moments and
// step counts), rng.safetensors (the CPU generator that drives dropout), trainer_state.json
// (written last).
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace torch::optim {
class Optimizer;
}

namespace clipcap {

struct TrainerState {
  int64_t epoch = 0;            // epochs finished
  int64_t batch_in_epoch = 0;   // micro-batches of the next epoch already trained (interrupted mid-epoch)
  int64_t step = 0;             // optimizer steps done
  double epoch_loss_sum = 0;    // token-weighted train loss of the unfinished epoch so far
  int64_t epoch_tokens = 0;
  double epoch_seconds = 0;     // training time of the unfinished epoch so far
  double epoch_lr_max = 0;      // highest lr the optimizer used in the unfinished epoch
  double elapsed_seconds = 0;   // whole run, all sessions
  double best_val_loss = std::numeric_limits<double>::infinity();

  nlohmann::json to_json() const;
  static TrainerState from_json(const nlohmann::json& j, const std::string& where);
};

void save_trainer_state(const std::string& dir, const TrainerState& state, torch::optim::Optimizer& optimizer);
TrainerState load_trainer_state(const std::string& dir, torch::optim::Optimizer& optimizer);

}  // namespace clipcap
