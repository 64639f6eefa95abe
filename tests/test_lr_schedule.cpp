// The learning-rate schedules both trainers use (train/lr_schedule.h).
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "common/json_util.h"
#include "data/embedding_dataset.h"
#include "model/captioner.h"
#include "tests/test_support.h"
#include "tests/test_train_support.h"
#include "train/lr_schedule.h"

namespace fs = std::filesystem;
using namespace clipcap::test;

TEST(LrSchedule, UpstreamTriangleHasTheRealPeakAndNoWastedFirstStep) {
  // LEGACY.md: max_point = int(k*epochs), a triangle up to max_lr and down to 0. Unit e trains at
  // the rise's value at e + 1 and the fall's at e, so neither the first nor the last unit is at 0.
  const double max_lr = 3e-3, k = 0.33;
  const int epochs = 150;
  clipcap::LrSchedule s("upstream", max_lr, k, 0.0, epochs, 1);
  const int max_point = static_cast<int>(k * epochs);
  double peak = 0;
  for (int e = 0; e < epochs; ++e) {
    const double want = std::min(max_lr * (e + 1) / max_point, max_lr * (epochs - e) / double(epochs - max_point));
    EXPECT_NEAR(s.at(e), want, 1e-15) << "epoch index " << e;
    peak = std::max(peak, s.at(e));
  }
  EXPECT_DOUBLE_EQ(peak, max_lr);  // not lr^2 (upstream's LambdaLR bug)
  EXPECT_DOUBLE_EQ(s.at(0), max_lr / max_point);  // upstream's first unit trained at 0
  EXPECT_DOUBLE_EQ(s.at(max_point - 1), max_lr);
  EXPECT_DOUBLE_EQ(s.at(max_point), max_lr);
  EXPECT_GT(s.at(epochs - 1), 0.0);
  EXPECT_NEAR(s.at(epochs), 0.0, 1e-18);
}

TEST(LrSchedule, PerEpochUnitHoldsTheValueForAWholeEpoch) {
  clipcap::LrSchedule s("upstream", 1.0, 0.5, 0.0, 4, /*unit_steps=*/10);  // 4 epochs of 10 steps, peak after 2
  EXPECT_DOUBLE_EQ(s.at(0), 0.5);
  EXPECT_DOUBLE_EQ(s.at(9), 0.5);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_DOUBLE_EQ(s.at(20), 1.0);
  EXPECT_DOUBLE_EQ(s.at(35), 0.5);
}

TEST(LrSchedule, CosineAndLinearWarmUpThenDecayToZero) {
  clipcap::LrSchedule c("cosine", 2.0, 0.3, 0.1, 100, 1), l("linear", 2.0, 0.3, 0.1, 100, 1);
  EXPECT_DOUBLE_EQ(c.at(0), 0.2);    // the first step already learns
  EXPECT_DOUBLE_EQ(c.at(4), 1.0);    // half way through the 10-step warmup
  EXPECT_DOUBLE_EQ(c.at(9), 2.0);    // its last step is at the peak
  EXPECT_DOUBLE_EQ(c.at(10), 2.0);
  EXPECT_NEAR(c.at(55), 1.0, 1e-12); // cosine half way
  EXPECT_NEAR(c.at(100), 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(l.at(55), 1.0);
  EXPECT_DOUBLE_EQ(l.at(10), 2.0);
}
