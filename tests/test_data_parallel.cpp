// How a global batch is shared between ranks, and the weighted gradient of one process
// (train/data_parallel.h): nothing dropped, nothing repeated, and a step's gradient is the one of
// the whole batch's weighted mean loss.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/test_support.h"
#include "train/data_parallel.h"

namespace {

// A DataParallel that says it is rank r of w, for the arithmetic that depends only on that.
class FakeRank : public clipcap::DataParallel {
 public:
  FakeRank(int r, int w) : r_(r), w_(w) {}
  int rank() const override { return r_; }
  int world_size() const override { return w_; }

 private:
  int r_, w_;
};

}  // namespace

TEST(DataParallel, RanksShareEveryGlobalBatchWithoutGapsOrRepeats) {
  for (int world : {1, 2, 4}) {
    for (int64_t n : {1, 7, 16, 37}) {
      const int64_t batch = 8;
      std::vector<int> seen(n, 0);
      for (int r = 0; r < world; ++r) {
        FakeRank rank(r, world);
        const int64_t per_rank = rank.per_rank(batch, "batch_size");
        for (int64_t b = 0; b < n; b += batch) {
          const auto [first, last] = rank.share(b, std::min(n, b + batch), per_rank);
          EXPECT_LE(first, last);
          EXPECT_LE(last - first, per_rank);
          for (int64_t i = first; i < last; ++i) ++seen[i];
        }
      }
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(seen[i], 1) << "world " << world << ", n " << n << ", item " << i;
    }
  }
  // The blocks are in rank order, so gathered rows are the global batch's order.
  using Range = std::pair<int64_t, int64_t>;
  EXPECT_EQ(FakeRank(1, 2).share(16, 32, 8), Range(24, 32));
  EXPECT_EQ(FakeRank(1, 2).share(16, 20, 8), Range(20, 20));
}

TEST(DataParallel, AGlobalBatchThatDoesNotSplitEvenlyIsAClearError) {
  clipcap::test::expect_error([] { FakeRank(0, 3).per_rank(64, "batch_size"); },
                              {"batch_size 64", "3 ranks", "multiple of 3"});
  EXPECT_EQ(FakeRank(0, 4).per_rank(64, "batch_size"), 16);
}

TEST(DataParallel, OneProcessDividesTheWeightedGradientByTheStepsWeight) {
  // Two micro-batches of mean losses over 1 and 3 tokens: the step's gradient is the token mean's.
  torch::Tensor w = torch::ones({1}, torch::requires_grad());
  torch::Tensor a = (w * 2.0).sum(), b = (w * 6.0).sum() / 3.0;  // means: 2 (1 token), 2 (3 tokens)
  (a * 1.0).backward();
  (b * 3.0).backward();
  std::vector<double> totals{4.0, 2.0 * 1 + 2.0 * 3};
  clipcap::single_process().reduce_gradients({w}, totals);
  EXPECT_DOUBLE_EQ(w.grad().item<double>(), (2.0 + 6.0) / 4.0);
  EXPECT_DOUBLE_EQ(totals[0], 4.0);
  clipcap::test::expect_error([&] {
    std::vector<double> none{0.0};
    clipcap::single_process().reduce_gradients({w}, none);
  }, {"no examples"});
}

TEST(DataParallel, EvenPartsCoverTheItems) {
  int64_t covered = 0;
  for (int r = 0; r < 3; ++r) {
    const auto [b, e] = clipcap::even_part(10, r, 3);
    EXPECT_EQ(b, covered);
    covered = e;
  }
  EXPECT_EQ(covered, 10);
}
