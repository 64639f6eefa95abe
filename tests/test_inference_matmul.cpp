// model/kernels/inference_matmul.h (oneDNN linears with the activation fused) against libtorch's own
// linear + activation: both weight layouts, row counts on each side of the primitive switch,
// every fusable activation, bf16, strided inputs, and the autograd fallback; frozen weights'
// packed copies (model/kernels/packed_weights.h).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/kernels/activations.h"
#include "model/kernels/inference_matmul.h"
#include "model/kernels/onednn.h"
#include "model/kernels/packed_weights.h"

namespace {

using clipcap::Activation;
using clipcap::WeightLayout;

struct NamedActivation {
  const char* name;
  Activation fn;
};

const NamedActivation kActivations[] = {
    {"none", nullptr},           {"quick_gelu", clipcap::quick_gelu}, {"gelu", clipcap::gelu},
    {"gelu_new", clipcap::gelu_new}, {"relu", clipcap::relu},         {"silu", clipcap::silu},
};

torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& w_out_in, const torch::Tensor& b, Activation act) {
  torch::Tensor y = at::linear(x.to(torch::kDouble), w_out_in.to(torch::kDouble),
                               b.defined() ? b.to(torch::kDouble) : b);
  return (act ? act(y) : y).to(torch::kFloat);
}

// 1 and 5 rows take the inner-product primitive, 16 and 70 the matmul one.
TEST(InferenceLinear, MatchesLinearPlusActivationForBothLayoutsAndAllRowCounts) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(11);
  const int64_t K = 96, N = 160;
  const torch::Tensor w = torch::randn({N, K}) * 0.1;
  const torch::Tensor b = torch::randn({N});
  const torch::Tensor w_in_out = w.t().contiguous();
  for (int64_t rows : {1, 5, 16, 70}) {
    const torch::Tensor x = torch::randn({rows, K});
    ASSERT_TRUE(clipcap::inference_linear_uses_onednn(x, w));
    for (const auto& a : kActivations) {
      const torch::Tensor want = reference(x, w, b, a.fn);
      const torch::Tensor got = clipcap::inference_linear(x, w, b, WeightLayout::out_in, a.fn);
      const torch::Tensor got_t = clipcap::inference_linear(x, w_in_out, b, WeightLayout::in_out, a.fn);
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_LT((got - want).abs().max().item<double>(), 1e-5) << rows << " rows, " << a.name;
      EXPECT_LT((got_t - want).abs().max().item<double>(), 1e-5) << rows << " rows, " << a.name << ", (in, out)";
    }
    const torch::Tensor no_bias = clipcap::inference_linear(x, w, torch::Tensor(), WeightLayout::out_in);
    EXPECT_LT((no_bias - reference(x, w, torch::Tensor(), nullptr)).abs().max().item<double>(), 1e-5) << rows;
  }
}

TEST(InferenceLinear, KeepsLeadingDimensionsAndReadsStridedInputs) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(12);
  torch::nn::Linear fc(64, 48);
  const torch::Tensor x = torch::randn({3, 64, 7}).transpose(1, 2);  // (3, 7, 64), not contiguous
  ASSERT_FALSE(x.is_contiguous());
  const torch::Tensor got = clipcap::inference_linear(fc, x, clipcap::quick_gelu);
  ASSERT_EQ(got.sizes(), (torch::IntArrayRef{3, 7, 48}));
  EXPECT_LT((got - clipcap::quick_gelu(fc->forward(x))).abs().max().item<float>(), 1e-5f);
}

TEST(InferenceLinear, BFloat16MatchesFloat32WithinBf16Rounding) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(13);
  const torch::Tensor x = torch::randn({20, 128});
  const torch::Tensor w = torch::randn({64, 128}) * 0.1;
  const torch::Tensor b = torch::randn({64}) * 0.1;
  const torch::Tensor want = reference(x, w, b, clipcap::gelu_new);
  const torch::Tensor got = clipcap::inference_linear(x.to(torch::kBFloat16), w.to(torch::kBFloat16),
                                                      b.to(torch::kBFloat16), WeightLayout::out_in, clipcap::gelu_new);
  ASSERT_EQ(got.scalar_type(), torch::kBFloat16);
  // bf16 inputs carry 8 bits of mantissa: relative error ~2^-8 per element, outputs of size ~1.
  EXPECT_LT((got.to(torch::kFloat) - want).abs().max().item<float>(), 0.08f);
  EXPECT_GT((got.to(torch::kFloat) - want).abs().max().item<float>(), 0.f);  // it did run in bf16
}

// An activation oneDNN cannot fuse is applied after the product.
torch::Tensor times_two(const torch::Tensor& x) { return x * 2; }

TEST(InferenceLinear, AppliesAnActivationItCannotFuseAfterwards) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(14);
  torch::nn::Linear fc(32, 8);
  const torch::Tensor x = torch::randn({20, 32});
  EXPECT_LT((clipcap::inference_linear(fc, x, times_two) - fc->forward(x) * 2).abs().max().item<float>(), 1e-5f);
}

// Training needs gradients: with autograd on it is libtorch's linear, graph and all.
TEST(InferenceLinear, WithAutogradItIsLibtorchsLinear) {
  torch::manual_seed(15);
  torch::nn::Linear fc(32, 8);
  const torch::Tensor x = torch::randn({20, 32});
  EXPECT_FALSE(clipcap::inference_linear_uses_onednn(x, fc->weight));
  const torch::Tensor y = clipcap::inference_linear(fc, x, clipcap::relu);
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  EXPECT_TRUE(fc->weight.grad().defined());
  EXPECT_TRUE(torch::equal(y, clipcap::relu(fc->forward(x))));
}

// Attention's products: q (B, H, T, hd) and k, v as head views of (B, T, D) activations.
TEST(InferenceMatmul, MatchesMatmulOnAttentionsStridedHeadViews) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(16);
  const int64_t B = 3, T = 7, H = 4, hd = 8, P = 5;
  auto heads = [&](const torch::Tensor& t, int64_t len) { return t.view({B, len, H, hd}).transpose(1, 2); };
  const torch::Tensor q = heads(torch::randn({B, T, H * hd}), T);
  const torch::Tensor k = heads(torch::randn({B, T + P, H * hd}), T + P);
  ASSERT_FALSE(q.is_contiguous());
  const torch::Tensor w = clipcap::inference_matmul(q, k.transpose(-1, -2));
  const torch::Tensor want_w = torch::matmul(q.to(torch::kDouble), k.transpose(-1, -2).to(torch::kDouble));
  ASSERT_EQ(w.sizes(), (torch::IntArrayRef{B, H, T, T + P}));
  EXPECT_LT((w - want_w).abs().max().item<double>(), 1e-5);
  const torch::Tensor v = heads(torch::randn({B, T + P, H * hd}), T + P);
  const torch::Tensor o = clipcap::inference_matmul(w.softmax(-1), v);
  EXPECT_LT((o - torch::matmul(w.softmax(-1), v)).abs().max().item<float>(), 1e-5f);
  // 2-D and 3-D operands too.
  const torch::Tensor a = torch::randn({6, 9}), b = torch::randn({9, 4});
  EXPECT_LT((clipcap::inference_matmul(a, b) - torch::matmul(a, b)).abs().max().item<float>(), 1e-5f);
  const torch::Tensor a3 = torch::randn({2, 6, 9}), b3 = torch::randn({2, 4, 9}).transpose(1, 2);
  EXPECT_LT((clipcap::inference_matmul(a3, b3) - torch::matmul(a3, b3)).abs().max().item<float>(), 1e-5f);
}

TEST(InferenceMatmul, BroadcastingBFloat16AndAutogradAreLibtorchsOrWithinRounding) {
  torch::manual_seed(17);
  const torch::Tensor a = torch::randn({2, 3, 5, 8}), b = torch::randn({8, 6});
  {
    torch::NoGradGuard no_grad;
    // Broadcast leading dimensions: libtorch's matmul does it.
    EXPECT_TRUE(torch::equal(clipcap::inference_matmul(a, b), torch::matmul(a, b)));
    const torch::Tensor b4 = torch::randn({2, 3, 8, 6});
    const torch::Tensor got = clipcap::inference_matmul(a.to(torch::kBFloat16), b4.to(torch::kBFloat16));
    ASSERT_EQ(got.scalar_type(), torch::kBFloat16);
    const torch::Tensor want = torch::matmul(a, b4);
    EXPECT_LT((got.to(torch::kFloat) - want).abs().max().item<float>(), 0.05f * want.abs().max().item<float>());
  }
  const torch::Tensor x = torch::randn({2, 5, 8}, torch::requires_grad());
  const torch::Tensor y = clipcap::inference_matmul(x, torch::randn({2, 8, 3}));
  ASSERT_TRUE(y.requires_grad());
  y.sum().backward();
  EXPECT_TRUE(x.grad().defined());
}

// The LM head of a bf16 model writing f32 logits: the f32 accumulator's values, not bf16-rounded ones.
TEST(InferenceLinear, Bf16ProductWithAnF32Result) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(13);
  const torch::Tensor w = (torch::randn({300, 64}) * 0.1).to(torch::kBFloat16);
  for (int64_t rows : {1, 16}) {
    const torch::Tensor x = torch::randn({rows, 64}).to(torch::kBFloat16);
    const torch::Tensor got = clipcap::inference_linear(x, w, torch::Tensor(), WeightLayout::out_in, nullptr, torch::kFloat);
    ASSERT_EQ(got.scalar_type(), torch::kFloat) << rows;
    const torch::Tensor want = reference(x.to(torch::kFloat), w.to(torch::kFloat), torch::Tensor(), nullptr);
    EXPECT_LT((got - want).abs().max().item<double>(), 1e-4) << rows;
    const torch::Tensor rounded = clipcap::inference_linear(x, w, torch::Tensor(), WeightLayout::out_in);
    EXPECT_EQ(rounded.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(torch::equal(got.to(torch::kBFloat16), rounded)) << rows;
  }
}

// ---- frozen weights, packed in the kernels' layout ---------------------------------------------

struct PackCase {
  torch::ScalarType dtype;
  WeightLayout layout;
  int64_t rows;
};

// Packing changes where the weights are read from, never a result: the first use (stored layout)
// and every later one (packed) agree bit for bit, for any row count, both layouts, f32 and bf16,
// with a bias and a fused activation. A resumed batch job relies on it.
TEST(PackedWeights, FrozenWeightsGiveTheSameBitsBeforeAndAfterPacking) {
  if (!clipcap::weight_packing_enabled()) GTEST_SKIP() << "CLIPCAP_PLAIN_WEIGHTS is set";
  torch::NoGradGuard no_grad;
  torch::manual_seed(21);
  const int64_t K = 96, N = 200;  // N not a multiple of the 64-wide blocks: padding
  for (auto dtype : {torch::kFloat, torch::kBFloat16})
    for (auto layout : {WeightLayout::out_in, WeightLayout::in_out})
      for (int64_t rows : {1, 5, 16, 70}) {
        const torch::Tensor w_out_in = (torch::randn({N, K}) * 0.1).to(dtype);
        const torch::Tensor w = layout == WeightLayout::out_in ? w_out_in : w_out_in.t().contiguous();
        const torch::Tensor b = torch::randn({N}).to(dtype);
        const torch::Tensor x = torch::randn({rows, K}).to(dtype);
        clipcap::freeze_weight(w);
        const size_t before = clipcap::packed_weight_count();
        const torch::Tensor first = clipcap::inference_linear(x, w, b, layout, clipcap::gelu_new);
        EXPECT_EQ(clipcap::packed_weight_count(), before) << "packed on its first use";
        const torch::Tensor second = clipcap::inference_linear(x, w, b, layout, clipcap::gelu_new);
        EXPECT_EQ(clipcap::packed_weight_count(), before + 1) << "not packed on its second use";
        const torch::Tensor third = clipcap::inference_linear(x, w, b, layout, clipcap::gelu_new);
        const std::string where = std::string(dtype == torch::kFloat ? "f32" : "bf16") +
                                  (layout == WeightLayout::out_in ? " (out, in) " : " (in, out) ") + std::to_string(rows) + " rows";
        EXPECT_TRUE(torch::equal(first, second)) << where;
        EXPECT_TRUE(torch::equal(second, third)) << where;
        const double tol = dtype == torch::kFloat ? 1e-5 : 3e-2;
        const torch::Tensor want = reference(x.to(torch::kFloat), w_out_in.to(torch::kFloat), b.to(torch::kFloat), clipcap::gelu_new);
        EXPECT_LT((third.to(torch::kFloat) - want).abs().max().item<double>(), tol) << where;
      }
}

TEST(PackedWeights, AWeightChangedInPlaceIsRepacked) {
  if (!clipcap::weight_packing_enabled()) GTEST_SKIP() << "CLIPCAP_PLAIN_WEIGHTS is set";
  torch::NoGradGuard no_grad;
  torch::manual_seed(22);
  torch::Tensor w = torch::randn({128, 64});
  const torch::Tensor x = torch::randn({3, 64});
  clipcap::freeze_weight(w);
  clipcap::inference_linear(x, w, torch::Tensor(), WeightLayout::out_in);
  const torch::Tensor before = clipcap::inference_linear(x, w, torch::Tensor(), WeightLayout::out_in);
  w.mul_(2);  // libtorch's in-place op moves the version counter
  const torch::Tensor after = clipcap::inference_linear(x, w, torch::Tensor(), WeightLayout::out_in);
  EXPECT_TRUE(torch::allclose(after, before * 2, 1e-5, 1e-5));
  const torch::Tensor packed_again = clipcap::inference_linear(x, w, torch::Tensor(), WeightLayout::out_in);
  EXPECT_TRUE(torch::equal(packed_again, after));
}

// Training writes its weights through raw pointers (the fused optimizer), which no version counter
// sees: weights that were never frozen are read where they are, every time.
TEST(PackedWeights, WeightsNotFrozenAreNeverPackedAndRawWritesAreSeen) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(23);
  torch::Tensor w = torch::randn({128, 64});
  const torch::Tensor x = torch::randn({4, 64});
  const size_t before = clipcap::packed_weight_count();
  for (int i = 0; i < 3; ++i) clipcap::inference_linear(x, w, torch::Tensor(), WeightLayout::out_in);
  EXPECT_EQ(clipcap::packed_weight_count(), before);
  float* raw = w.data_ptr<float>();
  for (int64_t i = 0; i < w.numel(); ++i) raw[i] = -raw[i];
  const torch::Tensor y = clipcap::inference_linear(x, w, torch::Tensor(), WeightLayout::out_in);
  EXPECT_LT((y - reference(x, w, torch::Tensor(), nullptr)).abs().max().item<double>(), 1e-5);
}

TEST(PackedWeights, AFreedWeightsCopyGoesAndAModuleFreezesAllItsWeights) {
  if (!clipcap::weight_packing_enabled()) GTEST_SKIP() << "CLIPCAP_PLAIN_WEIGHTS is set";
  torch::NoGradGuard no_grad;
  torch::manual_seed(24);
  const torch::Tensor x = torch::randn({2, 32});
  const size_t before = clipcap::packed_weight_count();
  {
    torch::nn::Linear fc1(32, 48), fc2(48, 16);
    torch::nn::Sequential net(fc1, fc2);
    clipcap::freeze_weights_for_inference(*net);
    for (int i = 0; i < 2; ++i) clipcap::inference_linear(fc2, clipcap::inference_linear(fc1, x));
    EXPECT_EQ(clipcap::packed_weight_count(), before + 2);
  }
  EXPECT_EQ(clipcap::packed_weight_count(), before);
}

// A primitive keeps the split of work it was made for: one made while the model had one thread
// (the video reader had the other core) must not serve the model once it has two again.
TEST(OnednnOps, EachThreadCountGetsItsOwnPrimitive) {
  const int threads = at::get_num_threads();
  int made = 0;
  const auto make = [&] {
    ++made;
    return clipcap::OnednnOp{};
  };
  const clipcap::OnednnKey key{-24, 1, 2, 3};
  at::set_num_threads(1);
  clipcap::onednn_op(key, make);
  clipcap::onednn_op(key, make);
  EXPECT_EQ(made, 1);
  at::set_num_threads(2);
  clipcap::onednn_op(key, make);
  EXPECT_EQ(made, 2);
  at::set_num_threads(1);
  clipcap::onednn_op(key, make);
  EXPECT_EQ(made, 2);
  at::set_num_threads(threads);
}

}  // namespace
