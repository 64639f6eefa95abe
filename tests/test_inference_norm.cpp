// model/kernels/inference_norm.h: bf16 layer norm through oneDNN against libtorch's in f32; f32 and
// autograd keep the module's own forward.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/kernels/inference_norm.h"

namespace {

torch::nn::LayerNorm random_layer_norm(int64_t d) {
  torch::nn::LayerNorm ln(torch::nn::LayerNormOptions({d}).eps(1e-5));
  torch::NoGradGuard no_grad;
  ln->weight.normal_(1.0, 0.3);
  ln->bias.normal_(0.0, 0.3);
  return ln;
}

TEST(InferenceLayerNorm, BFloat16MatchesFloat32WithinOneBf16Rounding) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(21);
  auto ln = random_layer_norm(96);
  const torch::Tensor x = (torch::randn({3, 17, 96}) * 4 + 1).to(torch::kBFloat16);
  ln->to(torch::kBFloat16);
  const torch::Tensor want = at::layer_norm(x.to(torch::kFloat), {96}, ln->weight.to(torch::kFloat),
                                            ln->bias.to(torch::kFloat), 1e-5);
  const torch::Tensor got = clipcap::inference_layer_norm(ln, x);
  ASSERT_EQ(got.scalar_type(), torch::kBFloat16);
  ASSERT_EQ(got.sizes(), x.sizes());
  // The same statistics in f32, then one rounding to bf16 (8 bits of mantissa: 2^-8 relative).
  const torch::Tensor err = (got.to(torch::kFloat) - want).abs() - want.abs() * (1.0 / 256);
  EXPECT_LT(err.max().item<float>(), 1e-3f);
  // And as close as libtorch's own bf16 layer norm gets.
  const torch::Tensor theirs = ln->forward(x).to(torch::kFloat);
  EXPECT_LT((got.to(torch::kFloat) - theirs).abs().max().item<float>(), 0.05f);
}

TEST(InferenceLayerNorm, Float32AndAutogradAreTheModulesForward) {
  torch::manual_seed(22);
  auto ln = random_layer_norm(32);
  const torch::Tensor x = torch::randn({5, 32});
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(clipcap::inference_layer_norm(ln, x), ln->forward(x)));
  }
  const torch::Tensor y = clipcap::inference_layer_norm(ln, x);
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  EXPECT_TRUE(ln->weight.grad().defined());
}

TEST(InferenceSoftmax, BFloat16IsTheF32SoftmaxWithinBf16Rounding) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(23);
  const torch::Tensor x = (torch::randn({2, 3, 5, 50}) * 6).to(torch::kBFloat16);
  const torch::Tensor got = clipcap::inference_softmax(x);
  ASSERT_EQ(got.scalar_type(), torch::kBFloat16);
  const torch::Tensor want = torch::softmax(x.to(torch::kFloat), -1);
  // Within two bf16 roundings (2^-7 relative): oneDNN's exp is its own approximation.
  EXPECT_LT(((got.to(torch::kFloat) - want).abs() - want * (1.0 / 128)).max().item<float>(), 1e-6f);
  EXPECT_LT((got.to(torch::kFloat).sum(-1) - 1).abs().max().item<float>(), 0.02f);
  // f32 is libtorch's, bit for bit.
  const torch::Tensor f = torch::randn({4, 9});
  EXPECT_TRUE(torch::equal(clipcap::inference_softmax(f), torch::softmax(f, -1)));
}

// Decoding's log-probabilities: GPT-2-sized rows (50,257 logits), f32 and bf16 inputs, f32 out.
TEST(InferenceLogSoftmax, MatchesLogSoftmaxInDoubleForF32AndBf16Rows) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(24);
  const torch::Tensor x = torch::randn({3, 50257}) * 8;
  const torch::Tensor got = clipcap::inference_log_softmax(x);
  ASSERT_EQ(got.scalar_type(), torch::kFloat);
  ASSERT_EQ(got.sizes(), x.sizes());
  const torch::Tensor want = torch::log_softmax(x.to(torch::kDouble), -1);
  EXPECT_LT((got.to(torch::kDouble) - want).abs().max().item<double>(), 1e-4);
  const torch::Tensor xb = x.to(torch::kBFloat16);
  const torch::Tensor gotb = clipcap::inference_log_softmax(xb);
  ASSERT_EQ(gotb.scalar_type(), torch::kFloat);  // of the bf16 values, without rounding the result
  EXPECT_LT((gotb.to(torch::kDouble) - torch::log_softmax(xb.to(torch::kDouble), -1)).abs().max().item<double>(), 1e-4);
  EXPECT_EQ(clipcap::inference_log_softmax(torch::empty({0, 7})).sizes(), torch::IntArrayRef({0, 7}));
}

}  // namespace
