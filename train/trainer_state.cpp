#include "train/trainer_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <mutex>

#include "common/error.h"
#include "common/json_util.h"
#include "model/weights/safetensors.h"

namespace fs = std::filesystem;

namespace clipcap {

nlohmann::json TrainerState::to_json() const {
  return {{"epoch", epoch},
          {"batch_in_epoch", batch_in_epoch},
          {"step", step},
          {"epoch_loss_sum", epoch_loss_sum},
          {"epoch_tokens", epoch_tokens},
          {"epoch_seconds", epoch_seconds},
          {"epoch_lr_max", epoch_lr_max},
          {"elapsed_seconds", elapsed_seconds},
          {"best_val_loss", std::isfinite(best_val_loss) ? nlohmann::json(best_val_loss) : nlohmann::json(nullptr)}};
}

TrainerState TrainerState::from_json(const nlohmann::json& j, const std::string& where) {
  TrainerState s;
  s.epoch = json_require<int64_t>(j, "epoch", where);
  s.batch_in_epoch = json_require<int64_t>(j, "batch_in_epoch", where);
  s.step = json_require<int64_t>(j, "step", where);
  s.epoch_loss_sum = json_require<double>(j, "epoch_loss_sum", where);
  s.epoch_tokens = json_require<int64_t>(j, "epoch_tokens", where);
  s.epoch_seconds = json_require<double>(j, "epoch_seconds", where);
  s.epoch_lr_max = json_require<double>(j, "epoch_lr_max", where);
  s.elapsed_seconds = json_require<double>(j, "elapsed_seconds", where);
  s.best_val_loss = json_value<double>(j, "best_val_loss", std::numeric_limits<double>::infinity(), where);
  return s;
}

void save_trainer_state(const std::string& dir, const TrainerState& state, torch::optim::Optimizer& optimizer) {
  const std::string opt_path = dir + "/optimizer.pt";
  try {
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    archive.save_to(opt_path);
  } catch (const c10::Error& e) {
    throw Error(opt_path + ": cannot save the optimizer state: " + e.what_without_backtrace());
  }
  torch::Tensor rng;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    rng = gen.get_state();  // (n) uint8
  }
  save_safetensors(dir + "/rng.safetensors", {{"cpu", rng}});
  write_json_atomic(dir + "/trainer_state.json", state.to_json());
}

TrainerState load_trainer_state(const std::string& dir, torch::optim::Optimizer& optimizer) {
  const std::string state_path = dir + "/trainer_state.json";
  if (!fs::exists(state_path))
    throw Error(dir + ": no trainer_state.json: not a checkpoint written by clipcap-train (or an unfinished one)");
  TrainerState s = TrainerState::from_json(read_json(state_path), state_path);
  const std::string opt_path = dir + "/optimizer.pt";
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(opt_path);
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    throw Error(opt_path + ": cannot restore the optimizer state (does the config's freeze policy match the run's?): " +
                e.what_without_backtrace());
  }
  auto tensors = load_safetensors(dir + "/rng.safetensors");
  if (!tensors.count("cpu")) throw Error(dir + "/rng.safetensors: missing tensor 'cpu'");
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(tensors.at("cpu"));
  return s;
}

}  // namespace clipcap
