// Learning-rate schedules, as a pure function of training progress: the one implementation both
// trainers use (train/training_loop.h calls at(step) before every optimizer step).
//
//   clipcap::LrSchedule s = clipcap::LrSchedule::from_config(cfg, steps_per_epoch);
//   double lr = s.at(step);          // step = optimizer steps done so far (0-based)
//
// upstream: the triangle of LEGACY.md ("The upstream model"), max_point = int(k*total): rises to
//   max_lr at max_point, falls to 0 at `total`. Unit e (0-based) trains at
//   min(max_lr*(e+1)/max_point, max_lr*(total-e)/(total-max_point)): upstream evaluated the rise at
//   e, so its first unit trained at lr 0 and was wasted; here the first unit already learns, the
//   units max_point-1 and max_point are at the peak and the last one still learns. With unit
//   "epoch" e is the epoch index; with unit "step" the same triangle over optimizer steps. max_lr
//   is the configured lr itself (upstream squared it by passing the value to LambdaLR).
// cosine / linear: linear warmup over the first w = int(warmup * total) units, unit e (0-based)
//   training at max_lr * (e + 1) / w, so the first step already learns and the last warmup unit
//   is at the peak; then cosine / linear decay to 0 at `total`.
// constant: lr throughout.
#pragma once

#include <cstdint>
#include <string>

namespace clipcap {

struct TrainConfig;

class LrSchedule {
 public:
  // total: length of training in units; units: steps or epochs; unit_steps: optimizer steps per unit.
  LrSchedule(std::string kind, double max_lr, double k, double warmup, int64_t total_units, int64_t unit_steps);
  static LrSchedule from_config(const TrainConfig& cfg, int64_t steps_per_epoch);

  double at(int64_t step) const;  // the lr used for the optimizer step after `step` steps
  double at_unit(double e) const; // the formula itself, e in units

 private:
  std::string kind_;
  double max_lr_, k_, warmup_;
  int64_t total_, unit_steps_;
};

}  // namespace clipcap
