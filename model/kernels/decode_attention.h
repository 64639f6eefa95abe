// Attention for one new token per row over its KV cache, in one pass per (row, head):
//
//   if (clipcap::decode_attention_applies(q, k, v))
//     o = clipcap::decode_attention(q, k, v, 1 / sqrt(head_dim));   // (B, 1, H * hd)
//
// The unfused step is ~10 operations per layer (two batched products, the scale, softmax, the
// head merge copy), each a few microseconds to launch on tensors of a few hundred values: at batch
// 1 they cost as much as a third of GPT-2's products (bench/README.md, "Captioning speed"). Scores,
// softmax and the weighted sum are computed in f32 (bf16 caches are widened), the result rounded
// once to q's dtype and written in the (B, 1, H * hd) layout the output projection reads.
#pragma once

#include <torch/types.h>

namespace clipcap {

// q (B, H, 1, hd); k, v (B, H, P, hd) with hd contiguous (any other strides: views of the cache).
bool decode_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale);

}  // namespace clipcap
