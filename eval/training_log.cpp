#include "eval/training_log.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "common/error.h"
#include "common/json_util.h"

namespace clipcap {
namespace fs = std::filesystem;

namespace {

double number_or_nan(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (!j[key].is_number()) throw Error(where + ": field '" + key + "' is not a number");
  return j[key].get<double>();
}

}  // namespace

TrainingLog read_training_log(const std::string& run_dir) {
  TrainingLog log;
  log.run_dir = run_dir;
  const fs::path metrics = fs::path(run_dir) / "metrics.jsonl";
  if (fs::exists(metrics)) {
    std::ifstream in(metrics);
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = metrics.string() + ":" + std::to_string(n);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
        throw Error(where + ": not valid JSON");
      }
      if (!j.is_object()) throw Error(where + ": not a JSON object");
      EpochRecord e;
      e.epoch = json_value<int64_t>(j, "epoch", static_cast<int64_t>(log.epochs.size()) + 1, where);
      e.step = json_value<int64_t>(j, "step", 0, where);
      e.train_loss = number_or_nan(j, "train_loss", where);
      e.val_loss = number_or_nan(j, "val_loss", where);
      e.lr = number_or_nan(j, "lr", where);
      log.epochs.push_back(e);
    }
  }
  const fs::path config = fs::path(run_dir) / "train_config.json";
  if (fs::exists(config)) log.train_config = read_json(config.string());
  return log;
}

std::optional<std::string> find_run_dir(const std::string& model_dir) {
  std::error_code ec;
  fs::path dir = fs::weakly_canonical(fs::path(model_dir), ec);
  if (ec) dir = fs::path(model_dir);
  if (dir.filename().empty()) dir = dir.parent_path();  // "runs/x/best/"
  const fs::path parent = dir.parent_path();
  if (parent.empty()) return std::nullopt;
  if (fs::exists(parent / "metrics.jsonl") || fs::exists(parent / "train_config.json")) return parent.string();
  return std::nullopt;
}

}  // namespace clipcap
