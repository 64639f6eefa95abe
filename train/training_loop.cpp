#include "train/training_loop.h"

#include <torch/torch.h>

#include <cmath>
#include <ostream>

#include "common/error.h"
#include "common/stopwatch.h"
#include "common/strings.h"
#include "train/optimizer.h"

namespace clipcap {

namespace {

// Where the progress line of a rank other than 0 goes.
std::ostream& discard() {
  static std::ostream null(nullptr);
  return null;
}

nlohmann::json number_or_null(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

TrainingLoop::TrainingLoop(TrainingObjective& objective, torch::optim::Optimizer& optimizer,
                           std::vector<torch::Tensor> params, LrSchedule schedule, TrainingLoopOptions opts,
                           TrainingHooks hooks, std::ostream& log, DataParallel& parallel)
    : objective_(objective),
      optimizer_(optimizer),
      params_(std::move(params)),
      schedule_(std::move(schedule)),
      opts_(std::move(opts)),
      hooks_(std::move(hooks)),
      log_(log),
      parallel_(parallel) {
  if (opts_.grad_accum < 1) throw Error("grad_accum must be >= 1, got " + std::to_string(opts_.grad_accum));
  if (opts_.save_every < 1) throw Error("save_every must be >= 1, got " + std::to_string(opts_.save_every));
}

int64_t TrainingLoop::steps_per_epoch() const {
  return (objective_.batches_per_epoch() + opts_.grad_accum - 1) / opts_.grad_accum;
}

bool TrainingLoop::run(TrainerState& st) {
  const int64_t batches = objective_.batches_per_epoch();
  const int64_t accum = opts_.grad_accum;
  // Every rank asks every time, so all of them stop at the same step.
  auto stop_requested = [&] { return parallel_.any(hooks_.stop_requested && hooks_.stop_requested()); };
  auto save_checkpoint = [&] {
    if (hooks_.save_checkpoint && parallel_.writes_outputs()) hooks_.save_checkpoint(st);
  };

  for (; st.epoch < opts_.epochs; ++st.epoch) {
    objective_.start_epoch(st.epoch);
    ProgressOptions po = opts_.progress;
    po.unit = "batch";
    if (!parallel_.writes_outputs()) po.out = &discard();
    Progress progress("epoch " + std::to_string(st.epoch + 1) + "/" + std::to_string(opts_.epochs), batches, po);
    progress.skip(st.batch_in_epoch);
    const auto t0 = Clock::now();
    auto account_time = [&] {
      const double secs = seconds_since(t0);
      st.epoch_seconds += secs;
      st.elapsed_seconds += secs;
    };
    // This rank's weight and weighted loss of the optimizer step so far; summed over the ranks
    // with the gradients, so the step's gradient and the epoch's loss are the global batch's.
    std::vector<double> step_totals{0.0, 0.0};
    double l = 0;
    // The step log's rate: weight and time since its previous line (or the start of this epoch).
    double logged_weight = 0;
    auto logged_at = t0;
    for (int64_t b = st.batch_in_epoch; b < batches; ++b) {
      const int64_t group_first = b - b % accum;
      const bool group_end = (b + 1) % accum == 0 || b + 1 == batches;
      if (b == group_first) {
        clear_gradients(optimizer_);  // the backward writes them: no zero fill, no add
        set_lr(optimizer_, schedule_.at(st.step));
        st.epoch_lr_max = std::max(st.epoch_lr_max, current_lr(optimizer_));
        step_totals = {0.0, 0.0};
      }
      BatchLoss batch = objective_.loss(b);
      if (batch.weight > 0) {  // a rank's share of a last short batch can be empty
        // Weighted by what the micro-batch counts for; reduce_gradients divides by the total.
        (batch.loss * static_cast<double>(batch.weight)).backward();
        l = batch.loss.item<double>();
        if (!std::isfinite(l))
          throw Error("training diverged: loss is " + std::to_string(l) + " at epoch " + std::to_string(st.epoch + 1) +
                      ", step " + std::to_string(st.step + 1) + " (lower --lr, or check the data)");
        step_totals[0] += static_cast<double>(batch.weight);
        step_totals[1] += l * static_cast<double>(batch.weight);
      }
      if (group_end) {
        parallel_.reduce_gradients(params_, step_totals);
        st.epoch_tokens += static_cast<int64_t>(std::llround(step_totals[0]));
        st.epoch_loss_sum += step_totals[1];
        if (opts_.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params_, opts_.grad_clip);
        optimizer_.step();
        objective_.after_step();
        ++st.step;
        logged_weight += step_totals[0];
        if (opts_.log_every > 0 && st.step % opts_.log_every == 0 && parallel_.writes_outputs()) {
          const double secs = seconds_since(logged_at);
          const double step_loss = step_totals[0] > 0 ? step_totals[1] / step_totals[0] : kNaN;
          const nlohmann::json record = {{"step", st.step},
                                         {"epoch", st.epoch + 1},
                                         {"lr", current_lr(optimizer_)},
                                         {"loss", number_or_null(step_loss)},
                                         {opts_.rate_key, secs > 0 ? logged_weight / secs : 0.0}};
          if (hooks_.record_step) hooks_.record_step(record);
          progress.print_line(step_line(record));
          logged_weight = 0;
          logged_at = Clock::now();
        }
      }
      st.batch_in_epoch = b + 1;
      progress.set_note("loss " + format_number(l, "%.4f") + " | lr " + format_number(schedule_.at(st.step), "%.2e"));
      progress.advance(1);
      if (group_end && b + 1 < batches && stop_requested()) {
        account_time();
        progress.finish();
        save_checkpoint();
        return false;
      }
    }
    progress.finish();
    account_time();
    finish_epoch(st);

    // The state saved says "epoch finished", so it is written after the counters move on.
    const int64_t finished = st.epoch + 1;
    const bool last_epoch = finished == opts_.epochs;
    const bool stop = !last_epoch && stop_requested();
    st.epoch = finished;
    if (last_epoch || finished % opts_.save_every == 0 || stop) save_checkpoint();
    st.epoch = finished - 1;  // the loop's ++ brings it back
    if (stop) {
      st.epoch = finished;
      return false;
    }
  }
  return true;
}

void TrainingLoop::finish_epoch(TrainerState& st) {
  const Validation v = objective_.validate();
  const double train_loss = st.epoch_loss_sum / static_cast<double>(std::max<int64_t>(1, st.epoch_tokens));
  const double lr = current_lr(optimizer_);  // the last one used
  const double rate = st.epoch_seconds > 0 ? static_cast<double>(st.epoch_tokens) / st.epoch_seconds : 0.0;
  nlohmann::json record = {{"epoch", st.epoch + 1},
                           {"step", st.step},
                           {"train_loss", train_loss},
                           {"val_loss", number_or_null(v.loss)}};
  for (const EpochMetric& m : v.metrics) record[m.key] = number_or_null(m.value);
  record["lr"] = lr;
  record["lr_max"] = st.epoch_lr_max;
  record[opts_.rate_key] = rate;
  record["elapsed_s"] = st.elapsed_seconds;
  record["ranks"] = parallel_.world_size();
  for (const auto& [key, value] : v.record.items()) record[key] = value;

  if (parallel_.writes_outputs()) {
    if (hooks_.record_epoch) hooks_.record_epoch(record);
    log_ << log_line(st, train_loss, v, lr, rate) << "\n";
    log_.flush();
  }

  // Selection falls back on the train loss when there is no validation split.
  const double score = std::isfinite(v.loss) ? v.loss : train_loss;
  const bool improved = score < st.best_val_loss;
  if (improved) st.best_val_loss = score;
  last_epoch_ = record;
  st.epoch_loss_sum = 0;
  st.epoch_tokens = 0;
  st.epoch_seconds = 0;
  st.epoch_lr_max = 0;
  st.batch_in_epoch = 0;
  if (improved && hooks_.save_best && parallel_.writes_outputs()) hooks_.save_best();
}

std::string TrainingLoop::step_line(const nlohmann::json& record) const {
  const auto& loss = record["loss"];
  return "step " + std::to_string(record["step"].get<int64_t>()) + " | epoch " +
         std::to_string(record["epoch"].get<int64_t>()) + " | lr " + format_number(record["lr"].get<double>(), "%.3e") +
         " | loss " + (loss.is_number() ? format_number(loss.get<double>(), "%.4f") : std::string("nan")) + " | " +
         format_number(record[opts_.rate_key].get<double>(), "%.0f") + " " + opts_.rate_label;
}

std::string TrainingLoop::log_line(const TrainerState& st, double train_loss, const Validation& v, double lr,
                                   double rate) const {
  const int64_t total = total_steps();
  const double eta = st.step > 0 ? st.elapsed_seconds * static_cast<double>(total - st.step) / static_cast<double>(st.step) : 0;
  std::string line = "epoch " + std::to_string(st.epoch + 1) + "/" + std::to_string(opts_.epochs) + " | step " +
                     std::to_string(st.step) + "/" + std::to_string(total) + " | train loss " +
                     format_number(train_loss, "%.4f");
  if (std::isfinite(v.loss)) line += " | val loss " + format_number(v.loss, "%.4f");
  for (const EpochMetric& m : v.metrics) line += " | " + m.label + " " + format_number(m.value, "%.3f");
  line += " | lr " + format_number(lr, "%.2e") + " | " + format_number(rate, "%.0f") + " " + opts_.rate_label + " | " +
          format_duration(st.elapsed_seconds) + " | eta " + format_duration(eta);
  if (!v.note.empty()) line += " | \"" + v.note + "\"";
  return line;
}

}  // namespace clipcap
