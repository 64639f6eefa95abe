#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "train/train_config.h"

namespace clipcap {

LrSchedule::LrSchedule(std::string kind, double max_lr, double k, double warmup, int64_t total_units,
                       int64_t unit_steps)
    : kind_(std::move(kind)), max_lr_(max_lr), k_(k), warmup_(warmup), total_(total_units), unit_steps_(unit_steps) {
  if (total_ < 1 || unit_steps_ < 1) throw Error("lr schedule: training must have at least one step");
}

LrSchedule LrSchedule::from_config(const TrainConfig& cfg, int64_t steps_per_epoch) {
  const bool per_epoch = cfg.schedule_unit == "epoch";
  return LrSchedule(cfg.schedule, cfg.lr, cfg.k, cfg.warmup, per_epoch ? cfg.epochs : cfg.epochs * steps_per_epoch,
                    per_epoch ? steps_per_epoch : 1);
}

double LrSchedule::at_unit(double e) const {
  const double n = static_cast<double>(total_);
  if (kind_ == "constant") return max_lr_;
  if (kind_ == "upstream") {
    // int() like upstream; a triangle needs a peak strictly inside (0, total). Unit e trains at
    // the triangle's value at the end of the unit on the way up (e + 1) and at its start on the way
    // down (e): upstream's first unit at lr 0 did nothing, and neither would a last one.
    const double max_point = std::clamp(std::floor(k_ * n), 1.0, std::max(1.0, n - 1));
    return std::max(0.0, std::min(max_lr_ * (e + 1) / max_point, max_lr_ * (n - e) / (n - max_point)));
  }
  const double w = std::floor(warmup_ * n);
  if (e < w) return max_lr_ * (e + 1) / w;
  const double t = n > w ? std::clamp((e - w) / (n - w), 0.0, 1.0) : 1.0;
  if (kind_ == "cosine") return max_lr_ * 0.5 * (1.0 + std::cos(M_PI * t));
  if (kind_ == "linear") return max_lr_ * (1.0 - t);
  throw Error("lr schedule: unknown kind '" + kind_ + "'");
}

double LrSchedule::at(int64_t step) const {
  // Per-epoch schedules hold the value for the whole epoch, like LambdaLR stepped once per epoch.
  return at_unit(static_cast<double>(unit_steps_ > 1 ? step / unit_steps_ : step));
}

}  // namespace clipcap
