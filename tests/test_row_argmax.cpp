// model/kernels/row_argmax.h against libtorch's argmax(1): the first maximum of each row (ties,
// -inf, a tail after the last 16 columns, short rows), a NaN counting as the maximum, and the
// fallback for what the kernel does not take.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "model/kernels/row_argmax.h"

namespace {

std::vector<int64_t> reference(const torch::Tensor& scores) {
  const torch::Tensor best = scores.argmax(1).contiguous();
  return std::vector<int64_t>(best.data_ptr<int64_t>(), best.data_ptr<int64_t>() + best.numel());
}

TEST(RowArgmax, IsTheFirstMaximumOfEachRowLikeLibtorch) {
  torch::manual_seed(5);
  for (int64_t V : {1, 7, 16, 17, 50257}) {
    // Values from a few levels: many ties, the first of which must win.
    torch::Tensor scores = torch::randint(0, 4, {9, V}).to(torch::kFloat);
    scores[1].fill_(-std::numeric_limits<float>::infinity());
    if (V > 3) scores[2][V - 1] = 9.f;  // the maximum in the tail
    if (V > 20) scores[3][20] = 9.f, scores[3][36] = 9.f;  // two lanes tie: the smaller column wins
    EXPECT_EQ(clipcap::row_argmax(scores), reference(scores)) << "V " << V;
  }
}

TEST(RowArgmax, ANaNIsTheMaximumAndOtherInputsTakeLibtorch) {
  torch::Tensor scores = torch::randn({3, 100});
  scores[0][40] = std::numeric_limits<float>::quiet_NaN();
  scores[0][70] = std::numeric_limits<float>::quiet_NaN();
  scores[2][99] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<int64_t> got = clipcap::row_argmax(scores);
  EXPECT_EQ(got[0], 40);
  EXPECT_EQ(got[2], 99);
  EXPECT_EQ(got, reference(scores));
  const torch::Tensor strided = torch::randn({100, 3}).t();  // not contiguous
  EXPECT_EQ(clipcap::row_argmax(strided), reference(strided));
  const torch::Tensor doubles = torch::randn({2, 33}, torch::kDouble);
  EXPECT_EQ(clipcap::row_argmax(doubles), reference(doubles));
}

}  // namespace
