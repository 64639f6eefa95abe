// model/kernels/int8_linear.h: per-channel int8 quantisation and the int8 x f32 product against a
// double-precision product with the dequantised weights, for row counts around the kernel's row
// blocks, a partial last panel, both weight layouts, bias, activation, bf16 inputs and the portable
// loop.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/kernels/int8_linear.h"

namespace {

using clipcap::Int8Weight;
using clipcap::WeightLayout;

torch::Tensor reference(const torch::Tensor& x, const Int8Weight& q, const torch::Tensor& b, clipcap::Activation act) {
  torch::Tensor y = at::linear(x.to(torch::kDouble), clipcap::dequantize_int8(q).to(torch::kDouble),
                               b.defined() ? b.to(torch::kDouble) : b);
  return (act ? act(y) : y).to(torch::kFloat);
}

TEST(Int8Quantize, EachWeightWithinHalfAStepOfItsChannelScale) {
  torch::manual_seed(3);
  torch::Tensor w = torch::randn({150, 96});
  w[7].zero_();  // an all-zero channel stays zero (no division by a zero scale)
  w[9] *= 40;    // one channel with a much wider range gets its own scale
  const Int8Weight q = clipcap::quantize_int8(w, WeightLayout::out_in);
  ASSERT_EQ(q.out_features(), 150);
  ASSERT_EQ(q.in_features(), 96);
  EXPECT_EQ(q.panels.sizes(), torch::IntArrayRef({3, 96, 64}));  // 150 outputs -> 3 panels of 64
  const torch::Tensor back = clipcap::dequantize_int8(q);
  const torch::Tensor step = q.scales.unsqueeze(1);
  EXPECT_TRUE(((back - w).abs() <= step * 0.5 + 1e-7).all().item<bool>());
  EXPECT_EQ(back[7].abs().max().item<float>(), 0.f);
  EXPECT_NEAR(q.scales[9].item<float>(), w[9].abs().max().item<float>() / 127, 1e-6);
  EXPECT_LT(q.scales[8].item<float>() * 10, q.scales[9].item<float>());
  // Padding outputs of the last panel are zero, so they add nothing.
  EXPECT_EQ(q.panels[2].narrow(1, 150 - 128, 128 + 64 - 150).abs().max().item<int8_t>(), 0);
  // (in, out) storage (GPT-2's Conv1D) quantises the same channels.
  const Int8Weight qt = clipcap::quantize_int8(w.t().contiguous(), WeightLayout::in_out);
  EXPECT_TRUE(torch::equal(qt.panels, q.panels));
  EXPECT_TRUE(torch::equal(qt.scales, q.scales));
}

void expect_matches_dequantised_product() {
  torch::NoGradGuard no_grad;
  torch::manual_seed(4);
  const int64_t K = 96, N = 150;
  const Int8Weight q = clipcap::quantize_int8(torch::randn({N, K}) * 0.1, WeightLayout::out_in);
  const torch::Tensor b = torch::randn({N});
  for (int64_t rows : {1, 2, 5, 6, 7, 13}) {
    const torch::Tensor x = torch::randn({rows, K});
    const torch::Tensor got = clipcap::int8_linear(x, q, b, clipcap::gelu_new);
    ASSERT_EQ(got.sizes(), torch::IntArrayRef({rows, N}));
    EXPECT_LT((got - reference(x, q, b, clipcap::gelu_new)).abs().max().item<double>(), 1e-5) << rows << " rows";
    const torch::Tensor no_bias = clipcap::int8_linear(x, q, torch::Tensor());
    EXPECT_LT((no_bias - reference(x, q, torch::Tensor(), nullptr)).abs().max().item<double>(), 1e-5) << rows;
  }
  // Leading dimensions kept, strided input read correctly.
  const torch::Tensor x3 = torch::randn({2, K, 3}).transpose(1, 2);  // (2, 3, K)
  const torch::Tensor y3 = clipcap::int8_linear(x3, q, b);
  ASSERT_EQ(y3.sizes(), torch::IntArrayRef({2, 3, N}));
  EXPECT_LT((y3 - reference(x3.reshape({6, K}), q, b, nullptr).view({2, 3, N})).abs().max().item<double>(), 1e-5);
}

TEST(Int8Linear, MatchesTheProductWithDequantisedWeights) { expect_matches_dequantised_product(); }

TEST(Int8Linear, PortableLoopMatchesToo) {
  clipcap::use_portable_int8_kernel(true);
  expect_matches_dequantised_product();
  clipcap::use_portable_int8_kernel(false);
}

TEST(Int8Linear, Bf16InputGivesBf16OutputOfTheF32Product) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  const Int8Weight q = clipcap::quantize_int8(torch::randn({64, 32}), WeightLayout::out_in);
  const torch::Tensor x = torch::randn({3, 32}).to(torch::kBFloat16);
  const torch::Tensor got = clipcap::int8_linear(x, q, torch::Tensor());
  EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
  const torch::Tensor want = reference(x.to(torch::kFloat), q, torch::Tensor(), nullptr);
  // The f32 result rounded once to bf16: within half a bf16 step (2^-8 relative) of the f32 product.
  EXPECT_TRUE(((got.to(torch::kFloat) - want).abs() <= want.abs() * (1.0 / 256) + 1e-6).all().item<bool>());
}

TEST(Int8Linear, QuantisationErrorIsSmallAgainstTheFloatProduct) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(6);
  const torch::Tensor w = torch::randn({768, 768}) * 0.02, x = torch::randn({4, 768});
  const torch::Tensor want = at::linear(x, w), got = clipcap::int8_linear(x, clipcap::quantize_int8(w, WeightLayout::out_in), {});
  // Relative error of a 768-long dot product with weights rounded to 1/254 of the channel's range.
  EXPECT_LT(((got - want).norm() / want.norm()).item<double>(), 0.01);
}

TEST(Int8Linear, RefusesMismatchedShapes) {
  const Int8Weight q = clipcap::quantize_int8(torch::randn({64, 32}), WeightLayout::out_in);
  EXPECT_THROW(clipcap::int8_linear(torch::randn({2, 31}), q, {}), c10::Error);
  EXPECT_THROW(clipcap::int8_linear(torch::randn({2, 32}), q, torch::randn({63})), c10::Error);
}

}  // namespace
