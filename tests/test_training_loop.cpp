// The training loop both trainers run (train/training_loop.h), on a toy objective whose gradients
// are known: accumulation, the schedule, stopping and resuming, keep-best, the checkpoint cadence,
// the epoch record and log line, divergence.
#include <torch/torch.h>

#include <cmath>
#include <sstream>

#include "tests/test_support.h"
#include "train/training_loop.h"

namespace clipcap {
namespace {

// Fits w in y = 3x by least squares: 8 examples, micro-batches of `batch`, a val loss that is the
// distance of w from 3 (so it improves while w approaches 3).
class LineFit : public TrainingObjective {
 public:
  explicit LineFit(int64_t batch) : batch_(batch), w(torch::zeros({1}, torch::requires_grad())) {}
  int64_t batches_per_epoch() const override { return 8 / batch_; }
  void start_epoch(int64_t epoch) override { epochs_started.push_back(epoch); }
  BatchLoss loss(int64_t b) override {
    torch::Tensor x = torch::arange(b * batch_ + 1, (b + 1) * batch_ + 1, torch::kFloat);  // (batch)
    return {((w * x - 3 * x) * (w * x - 3 * x)).mean() * scale, batch_};
  }
  void after_step() override { ++steps; }
  Validation validate() override {
    Validation v;
    v.loss = std::abs(3.0 - w.item<double>()) + bump;
    v.metrics.push_back({"w", "w", w.item<double>()});
    v.note = "w is " + std::to_string(w.item<double>());
    return v;
  }
  const int64_t batch_;
  torch::Tensor w;
  double scale = 1, bump = 0;
  int steps = 0;
  std::vector<int64_t> epochs_started;
};

struct Trial {
  LineFit fit;
  torch::optim::SGD sgd;
  std::ostringstream log;
  std::vector<nlohmann::json> records;
  std::vector<TrainerState> checkpoints;
  int best_saves = 0;
  TrainingLoopOptions opts;
  TrainingHooks hooks;

  explicit Trial(int64_t batch, int64_t accum = 1) : fit(batch), sgd({fit.w}, torch::optim::SGDOptions(0.01)) {
    opts.epochs = 3;
    opts.grad_accum = accum;
    opts.progress.out = &log;
    opts.progress.tty = 0;
    hooks.record_epoch = [this](const nlohmann::json& r) { records.push_back(r); };
    hooks.save_checkpoint = [this](const TrainerState& s) { checkpoints.push_back(s); };
    hooks.save_best = [this] { ++best_saves; };
  }
  bool run(TrainerState& state, double lr = 0.01) {
    TrainingLoop loop(fit, sgd, {fit.w}, LrSchedule("constant", lr, 0, 0, opts.epochs * 8, 1), opts, hooks, log);
    return loop.run(state);
  }
};

TEST(TrainingLoop, AccumulatedMicroBatchesStepLikeTheWholeBatch) {
  Trial whole(4), accumulated(2, /*accum=*/2);
  TrainerState a, b;
  ASSERT_TRUE(whole.run(a));
  ASSERT_TRUE(accumulated.run(b));
  EXPECT_EQ(a.step, 6);  // 2 steps an epoch, 3 epochs
  EXPECT_EQ(b.step, 6);
  EXPECT_EQ(accumulated.fit.steps, 6);
  EXPECT_NEAR(whole.fit.w.item<double>(), accumulated.fit.w.item<double>(), 1e-6);
  EXPECT_GT(whole.fit.w.item<double>(), 0.5);  // it learns
}

TEST(TrainingLoop, EveryEpochIsRecordedLoggedAndTheBestKept) {
  Trial r(4);
  r.opts.save_every = 2;
  TrainerState st;
  ASSERT_TRUE(r.run(st));
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.fit.epochs_started, (std::vector<int64_t>{0, 1, 2}));
  const nlohmann::json& last = r.records.back();
  EXPECT_EQ(last["epoch"], 3);
  EXPECT_EQ(last["step"], 6);
  EXPECT_DOUBLE_EQ(last["lr"].get<double>(), 0.01);
  EXPECT_DOUBLE_EQ(last["w"].get<double>(), r.fit.w.item<double>());
  EXPECT_GT(last["tokens_per_s"].get<double>(), 0);
  EXPECT_EQ(r.best_saves, 3);  // w moves towards 3 every epoch
  // Checkpoints after epoch 2 (save_every) and 3 (the last), each saying "epochs finished".
  ASSERT_EQ(r.checkpoints.size(), 2u);
  EXPECT_EQ(r.checkpoints[0].epoch, 2);
  EXPECT_EQ(r.checkpoints[1].epoch, 3);
  EXPECT_EQ(r.checkpoints[1].batch_in_epoch, 0);
  const std::string log = r.log.str();
  EXPECT_NE(log.find("epoch 3/3 | step 6/6 | train loss "), std::string::npos) << log;
  EXPECT_NE(log.find(" | val loss "), std::string::npos) << log;
  EXPECT_NE(log.find(" | w "), std::string::npos) << log;
  EXPECT_NE(log.find(" tok/s | "), std::string::npos) << log;
  EXPECT_NE(log.find(" | \"w is "), std::string::npos) << log;
}

TEST(TrainingLoop, LogEveryRecordsEachNthStepWithTheLrItUsed) {
  Trial r(2);  // 4 steps an epoch, 12 in all
  r.opts.log_every = 5;
  std::vector<nlohmann::json> steps;
  r.hooks.record_step = [&](const nlohmann::json& s) { steps.push_back(s); };
  TrainerState st;
  TrainingLoop loop(r.fit, r.sgd, {r.fit.w}, LrSchedule("linear", 0.01, 0, 0.5, 12, 1), r.opts, r.hooks, r.log);
  ASSERT_TRUE(loop.run(st));
  ASSERT_EQ(steps.size(), 2u);  // steps 5 and 10
  EXPECT_EQ(steps[0]["step"], 5);
  EXPECT_EQ(steps[0]["epoch"], 2);
  EXPECT_EQ(steps[1]["step"], 10);
  EXPECT_EQ(steps[1]["epoch"], 3);
  // Step 5 (index 4) is after the 6-step warmup's fifth step: 0.01 * 5 / 6.
  EXPECT_DOUBLE_EQ(steps[0]["lr"].get<double>(), 0.01 * 5 / 6);
  EXPECT_GT(steps[0]["loss"].get<double>(), 0.0);
  EXPECT_GT(steps[0]["tokens_per_s"].get<double>(), 0.0);
  const std::string log = r.log.str();
  EXPECT_NE(log.find("step 5 | epoch 2 | lr 8.333e-03 | loss "), std::string::npos) << log;
  EXPECT_NE(log.find("step 10 | epoch 3 | lr "), std::string::npos) << log;
  EXPECT_EQ(log.find("step 15 |"), std::string::npos) << log;
}

TEST(TrainingLoop, AStopSavesThePositionAndAResumeEndsWhereAnUninterruptedRunEnds) {
  Trial whole(2);
  TrainerState full;
  ASSERT_TRUE(whole.run(full));

  Trial first(2);
  int steps_seen = 0;
  first.hooks.stop_requested = [&] { return ++steps_seen == 5; };  // epoch 2, after its first step
  TrainerState st;
  EXPECT_FALSE(first.run(st));
  // The end of epoch 1 (save_every 1), then the stop inside epoch 2.
  ASSERT_EQ(first.checkpoints.size(), 2u);
  EXPECT_EQ(first.checkpoints[1].epoch, 1);
  EXPECT_EQ(first.checkpoints[1].batch_in_epoch, 1);
  EXPECT_EQ(first.checkpoints[1].step, 5);

  // The same objective and optimizer continue from the checkpoint's state.
  first.hooks.stop_requested = nullptr;
  TrainerState resumed = first.checkpoints[1];
  ASSERT_TRUE(first.run(resumed));
  EXPECT_EQ(resumed.step, full.step);
  EXPECT_DOUBLE_EQ(first.fit.w.item<double>(), whole.fit.w.item<double>());
  EXPECT_EQ(first.records.size(), 3u);  // epochs 1, 2, 3: none twice
}

TEST(TrainingLoop, AValidationLossThatGetsWorseKeepsTheEarlierBest) {
  Trial r(4);
  r.fit.bump = 0;
  int epoch = 0;
  r.hooks.record_epoch = [&](const nlohmann::json&) { r.fit.bump = ++epoch * 10.0; };  // later epochs look worse
  TrainerState st;
  ASSERT_TRUE(r.run(st));
  EXPECT_EQ(r.best_saves, 1);
  EXPECT_LT(st.best_val_loss, 3.0);
}

TEST(TrainingLoop, ANonFiniteLossStopsWithTheEpochAndStep) {
  Trial r(4);
  r.fit.scale = std::numeric_limits<double>::quiet_NaN();
  TrainerState st;
  test::expect_error([&] { r.run(st); }, {"training diverged", "epoch 1", "step 1", "--lr"});
}

}  // namespace
}  // namespace clipcap
