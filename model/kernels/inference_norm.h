// Layer norm and softmax for bf16 inference through oneDNN:
//
//   torch::Tensor y = clipcap::inference_layer_norm(layer_norm1, x);   // == layer_norm1(x)
//   torch::Tensor p = clipcap::inference_softmax(scores);              // softmax over the last dim
//
// Why: Debian's libtorch 1.13 normalises bf16 rows element by element, an order of magnitude slower
// than oneDNN and a fifth of clipcap's bf16 CLIP forward (bench/README.md, "Measurements behind
// code decisions"). Like libtorch it computes the statistics in f32 and rounds the output to bf16.
// Attention's softmax in bf16 is computed in f32 (where bf16 loses most is the sum over keys);
// libtorch needs two conversions for that, oneDNN accumulates in f32 inside one pass.
// f32 inputs, autograd and autocast keep the module's own forward (f32 is the exact reference).
#pragma once

#include <torch/nn/modules/normalization.h>

namespace clipcap {

torch::Tensor inference_layer_norm(torch::nn::LayerNorm& ln, const torch::Tensor& x);

// Softmax over the last dimension; bf16 input: f32 arithmetic, bf16 output. Elsewhere libtorch's
// (f32 itself, or bf16 upcast to f32 and back).
torch::Tensor inference_softmax(const torch::Tensor& x);

// log_softmax over the last dimension of f32 or bf16 rows, always an f32 result: one oneDNN pass
// (libtorch 1.13's log_softmax / logsumexp over 16 rows of GPT-2's 50,257 logits took ~2 ms, a
// tenth of a batch-16 bf16 decoding step: bench/README.md, "Measurements behind code decisions").
torch::Tensor inference_log_softmax(const torch::Tensor& x);

}  // namespace clipcap
