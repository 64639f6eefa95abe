// Additive attention-mask helpers shared by CLIP and GPT-2 (HF builds masks from finfo(dtype).min).
//
//   double m = clipcap::dtype_lowest(scores.scalar_type());   // -3.4028235e38 for float32
//   torch::Tensor pad = clipcap::padding_mask(attention_mask, scores.scalar_type());  // (B, 1, 1, S)
#pragma once

#include <torch/types.h>

namespace clipcap {

// The most negative finite value of a floating dtype: float32 min for f32, bf16's own for bf16
// (float32 min would round to -inf in bf16 and turn fully masked rows into NaN).
double dtype_lowest(torch::ScalarType dtype);

// attention_mask (B, S) of 1 = attend, 0 = padding -> (B, 1, 1, S) of (1 - mask) * lowest, in dtype.
torch::Tensor padding_mask(const torch::Tensor& attention_mask, torch::ScalarType dtype);

}  // namespace clipcap
