// model/kernels/decode_attention.h against HF's unfused attention for one new token: f32 and bf16,
// keys and values as views of a KV cache with room to grow (strided), several rows and heads, head
// sizes for both kernels.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "model/kernels/decode_attention.h"

namespace {

// softmax(q k^T / sqrt(hd)) v in double, heads merged: (B, 1, H * hd).
torch::Tensor reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(3)));
  torch::Tensor w = torch::softmax(torch::matmul(q.to(torch::kDouble), k.to(torch::kDouble).transpose(-1, -2)) * scale, -1);
  torch::Tensor o = torch::matmul(w, v.to(torch::kDouble));  // (B, H, 1, hd)
  return o.permute({0, 2, 1, 3}).reshape({q.size(0), 1, -1});
}

// hd 16 and 64 (GPT-2's) take the AVX-512 kernel where the CPU has it, 24 the portable loops.
class DecodeAttention : public ::testing::TestWithParam<int64_t> {};

TEST_P(DecodeAttention, MatchesUnfusedAttentionOverACacheView) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(31);
  const int64_t B = 3, H = 4, P = 9, hd = GetParam(), capacity = 32;
  const torch::Tensor room_k = torch::randn({B, H, capacity, hd}) * 2, room_v = torch::randn({B, H, capacity, hd});
  const torch::Tensor k = room_k.narrow(2, 0, P), v = room_v.narrow(2, 0, P);  // what KVCache hands out
  const torch::Tensor q = torch::randn({B, 1, H, hd}).permute({0, 2, 1, 3});   // (B, H, 1, hd), strided like the model's
  ASSERT_TRUE(clipcap::decode_attention_applies(q, k, v));
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const torch::Tensor got = clipcap::decode_attention(q, k, v, scale);
  ASSERT_EQ(got.sizes(), torch::IntArrayRef({B, 1, H * hd}));
  EXPECT_LT((got.to(torch::kDouble) - reference(q, k, v)).abs().max().item<double>(), 1e-5);

  const torch::Tensor qb = q.to(torch::kBFloat16), kb = k.to(torch::kBFloat16), vb = v.to(torch::kBFloat16);
  const torch::Tensor gotb = clipcap::decode_attention(qb, kb, vb, scale);
  ASSERT_EQ(gotb.scalar_type(), torch::kBFloat16);
  // f32 arithmetic on the bf16 values, rounded once: within a bf16 step of the exact result.
  const torch::Tensor want = reference(qb, kb, vb);
  EXPECT_TRUE(((gotb.to(torch::kDouble) - want).abs() <= want.abs() / 128 + 1e-3).all().item<bool>());
}

INSTANTIATE_TEST_SUITE_P(HeadDims, DecodeAttention, ::testing::Values(16, 24, 64));

TEST(DecodeAttentionShapes, AppliesOnlyToOneUngradedTokenOfMatchingShapes) {
  const torch::Tensor k = torch::randn({1, 2, 5, 8}), v = torch::randn({1, 2, 5, 8});
  EXPECT_FALSE(clipcap::decode_attention_applies(torch::randn({1, 2, 2, 8}), k, v));        // two new tokens
  EXPECT_FALSE(clipcap::decode_attention_applies(torch::randn({1, 2, 1, 8}), k, v.narrow(2, 0, 4)));
  EXPECT_FALSE(clipcap::decode_attention_applies(torch::randn({1, 2, 1, 8}).to(torch::kDouble), k, v));
  EXPECT_FALSE(clipcap::decode_attention_applies(torch::randn({1, 2, 1, 8}, torch::requires_grad()), k, v));
  EXPECT_TRUE(clipcap::decode_attention_applies(torch::randn({1, 2, 1, 8}), k, v));
}

}  // namespace
