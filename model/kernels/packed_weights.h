// Inference weights in the blocked layout oneDNN's matrix kernels read, made once per weight and
// kept while the weight lives:
//
//   clipcap::PackedWeight p = clipcap::packed_weight(weight, plain_desc, op.descs[kWeights]);
//   if (p.bytes.defined()) ... run the primitive on clipcap::onednn_memory(op.descs[kWeights], p.bytes)
//
// Why: given weights in their stored (plain) layout, oneDNN's matmul copies them into its blocked
// layout (bf16: pairs of K interleaved for the dot-product instructions) on every call. With a few
// rows, as in decoding, that copy costs more than the product: packed once, the products of a bf16
// GPT-2 decoding step for 16 rows took 9.2 ms instead of 24 ms, for 1 row 6.5 ms instead of 8.7
// (bench/README.md, "Measurements behind code decisions"; whole decoding 1.1-1.8x, "Packed weights").
//
// Only weights declared constant (freeze_weights_for_inference, model/kernels/inference_matmul.h)
// are packed: training writes its weights in place through raw pointers (train/optimizer.cpp), which
// no check here could see. A weight is identified by its storage (held weakly: a freed weight's copy
// is dropped at the next insertion), offset, shape and strides, and its version counter (an in-place
// update through libtorch repacks). It is packed on its second use, so a model used once (CLIP for
// one image) does not pay for the copy, whose first touch of fresh memory is the expensive part. The
// copy doubles the memory of the frozen f32/bf16 weights; CLIPCAP_PLAIN_WEIGHTS=1 in the environment
// turns packing off.
// Only kernel .cpp files include this (it pulls in dnnl.hpp).
#pragma once

#include <torch/types.h>

#include <dnnl.hpp>

namespace clipcap {

struct PackedWeight {
  bool frozen = false;  // the weight is frozen and packing is on (then run the packed layout's kernel)
  torch::Tensor bytes;  // its copy in the packed layout; undefined on its first use
};

// The packed copy of `weight` (memory laid out as `plain`) in the layout `packed`.
PackedWeight packed_weight(const torch::Tensor& weight, const dnnl::memory::desc& plain, const dnnl::memory::desc& packed);

bool weight_packing_enabled();

// Registers the tensor's storage as frozen (weakly: it goes when the tensor does).
void freeze_weight(const torch::Tensor& weight);

// How many live weights have a packed copy now (tests).
size_t packed_weight_count();

}  // namespace clipcap
