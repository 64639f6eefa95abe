// Matrix products for inference on the CPU through oneDNN's primitives, called directly on the
// tensors' memory: linear layers with the MLP activation fused in, and attention's batched products
// on strided views (no copies):
//
//   torch::Tensor h = clipcap::inference_linear(fc1, x, clipcap::quick_gelu);  // == quick_gelu(fc1(x))
//   torch::Tensor y = clipcap::inference_linear(x, conv1d_weight, bias, clipcap::WeightLayout::in_out);
//   torch::Tensor w = clipcap::inference_matmul(q, k.transpose(-1, -2));      // == torch::matmul(q, kT)
//
// Why not libtorch's own linear: Debian's libtorch multiplies f32 matrices with OpenBLAS, whose
// kernels are chosen per CPU model (this project's machine pins its older Haswell kernels, because
// newer ones of that OpenBLAS are unsafe there), while oneDNN picks its kernels from the CPU's
// features (AVX-512 here). And at::mkldnn_linear copies its input into and its output out of
// oneDNN's tensor type on every call, and runs the activation as separate passes over memory.
// And libtorch's batched f32 matmul runs one OpenBLAS call per matrix: 12 heads x a batch of small
// products. The gains, per product and per model: bench/README.md, "Measurements behind code
// decisions".
//
// Applies to f32 and bf16 CPU tensors of matching dtype when autograd and autocast are off;
// anywhere else it is libtorch's linear followed by the activation, so training is unchanged.
// Results agree with BLAS's to float rounding (a different summation order, the activation
// applied before rounding to bf16), which the golden tests' 1e-4 bound covers.
// CLIPCAP_BLAS_LINEAR=1 in the environment turns it off (to compare, or to rule it out).
#pragma once

#include <torch/nn/modules/linear.h>

#include "model/kernels/activations.h"

namespace clipcap {

enum class WeightLayout {
  out_in,  // (out, in): torch.nn.Linear, CLIP, lm_head / tied wte
  in_out,  // (in, out): GPT-2's Conv1D
};

// x (..., in) -> act(x W + bias) (..., out). bias may be undefined; act may be nullptr (none).
// out_dtype: the result's dtype when it differs from x's (bf16 products with an f32 result, as
// decoding wants its logits: oneDNN writes them from its f32 accumulator, no conversion pass).
torch::Tensor inference_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                               WeightLayout layout, Activation act = nullptr,
                               c10::optional<at::ScalarType> out_dtype = c10::nullopt);

// Also int8 weights (model/kernels/int8_linear.h, quantize_parameter_int8).
torch::Tensor inference_linear(torch::nn::Linear& linear, const torch::Tensor& x, Activation act = nullptr);

// a (..., M, K) @ b (..., K, N) -> (..., M, N), contiguous; leading dimensions equal (no
// broadcasting), any strides. Elsewhere (autograd, other dtypes) it is torch::matmul.
torch::Tensor inference_matmul(const torch::Tensor& a, const torch::Tensor& b);

// Declares the module's weights constant from now on (inference only): inference_linear may then
// multiply by copies in the blocked layout oneDNN's kernels read (model/kernels/packed_weights.h),
// made on a weight's second use, bit for bit the same results (decoding 1.1-1.8x faster here:
// bench/README.md, "Packed weights"). A weight later changed by libtorch's in-place ops is repacked
// (its version counter moved); raw writes through data_ptr are not seen, so never freeze what is
// still being trained.
void freeze_weights_for_inference(const torch::nn::Module& module);

// Whether inference_linear / inference_matmul would run through oneDNN (for tests and benchmarks).
bool inference_linear_uses_onednn(const torch::Tensor& x, const torch::Tensor& weight);

}  // namespace clipcap
