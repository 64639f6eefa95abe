// What clipcap's direct calls into oneDNN share (model/kernels/inference_matmul.cpp, inference_norm.cpp):
// the CPU engine, a per-thread cache of primitives by shape, and running one on tensors' memory.
//
//   const clipcap::OnednnOp& op = clipcap::onednn_op(key, [&] { ...; return op; });
//   if (op.supported) clipcap::onednn_run(op, {{DNNL_ARG_SRC, clipcap::onednn_memory(op.descs[0], x)}, ...});
//
// Only our .cpp files include this (it pulls in dnnl.hpp); the headers they implement stay light.
#pragma once

#include <torch/types.h>

#include <dnnl.hpp>

#include <functional>
#include <unordered_map>
#include <vector>

namespace clipcap {

dnnl::engine& onednn_engine();

// Everything a primitive depends on, as integers: a tag for its kind first, then shapes, strides,
// dtypes, attributes (floats by their bits, onednn_bits).
using OnednnKey = std::vector<int64_t>;
int64_t onednn_bits(float f);

struct OnednnOp {
  dnnl::primitive primitive;
  std::vector<dnnl::memory::desc> descs;  // in the order its maker chose
  bool supported = true;                  // false: oneDNN has no kernel for this; use libtorch
};

// Creating a primitive descriptor costs tens of microseconds, as much as a decoding step's small
// products: each is made once per key. Per thread, because a primitive shares its scratchpad
// between executions, and per thread count, because it splits its work for the threads there were
// when it was made. A maker that throws dnnl::error records the key as unsupported.
const OnednnOp& onednn_op(const OnednnKey& key, const std::function<OnednnOp()>& make);

// Whether tensors of this dtype may go through oneDNN here: CPU, f32 or bf16, and neither
// autograd nor autocast on (training keeps libtorch's differentiable ops).
// CLIPCAP_BLAS_LINEAR=1 in the environment turns every direct oneDNN call off.
bool onednn_inference(const torch::Tensor& t);
dnnl::memory::data_type onednn_dtype(at::ScalarType t);  // f32 or bf16

dnnl::memory onednn_memory(const dnnl::memory::desc& desc, const torch::Tensor& t);
void onednn_run(const OnednnOp& op, std::unordered_map<int, dnnl::memory>&& args);

}  // namespace clipcap
