// A linear layer's forward for f32 inference on the CPU through oneDNN rather than the system BLAS.
//
//   torch::Tensor y = clipcap::inference_linear(fc1, x);   // == fc1(x), faster where it applies
//
// Debian's libtorch multiplies f32 matrices with OpenBLAS, whose kernels are chosen per CPU model
// (OPENBLAS_CORETYPE may pin older, safer ones); oneDNN picks its kernels from the CPU's features.
// On this project's machine (AVX-512, OpenBLAS on its Haswell kernels) the CLIP MLP shape ran 1.45x
// faster (800x768 -> 3072, 2 threads), the ViT-B/32 forward of 16 images 1.3x (caption_bench). Applies without autograd, to f32 CPU inputs of >= 64 rows
// (tall enough for a GEMM); elsewhere it is the module's own forward. Results agree with BLAS's to
// float rounding (a different summation order), which the golden tests' 1e-4 bound covers.
// CLIPCAP_BLAS_LINEAR=1 in the environment turns it off (to compare, or to rule it out).
#pragma once

#include <torch/nn/modules/linear.h>

namespace clipcap {

torch::Tensor inference_linear(torch::nn::Linear& linear, const torch::Tensor& x);

}  // namespace clipcap
