// Process-wide compute settings shared by every executable: threads, dtype, device (and the
// allocator, see common/allocator.h).
//
//   clipcap::RuntimeOptions rt;            // filled from --threads/--dtype/--device
//   clipcap::apply_runtime(rt);            // sets libtorch's thread pools, checks the device
//   auto dev = rt.torch_device();
//
// Debian's libtorch starts with one intra-op thread, so the default (0) means "all cores".
#pragma once

#include <torch/types.h>

#include <string>

namespace clipcap {

struct RuntimeOptions {
  int threads = 0;             // 0 = all cores
  std::string dtype = "f32";   // f32 (reference) | bf16 (faster on AVX-512/AMX CPUs) | int8 (captioning)
  std::string device = "cpu";  // cpu | cuda (cuda only when libtorch was built with it)

  // Activations' dtype when captioning: dtype itself, f32 for int8 (int8 weights, f32 activations).
  torch::ScalarType torch_dtype() const;
  bool int8_weights() const { return dtype == "int8"; }
  // Weights' and activations' dtype for work that has no int8 form (dataset building, training).
  torch::ScalarType float_dtype() const;
  torch::Device torch_device() const;
};

void apply_runtime(const RuntimeOptions& opts);
int available_cores();
torch::ScalarType parse_dtype(const std::string& name);  // f32|fp32|float32|bf16|bfloat16|f16 (int8: an error)

// libtorch's intra-op threads one fewer (at least 1) while another thread of this process keeps a
// core busy (the video decoder): its threads wait for each other at every op, so one of them sharing
// a core slows the whole model down (bench/README.md, "Measurements behind code decisions").
// Thread counts are per process in libtorch; back to all of them at restore() or destruction,
// one fewer again at reduce().
class OneThreadFewer {
 public:
  OneThreadFewer();
  ~OneThreadFewer() { restore(); }
  void restore();
  void reduce();
  OneThreadFewer(const OneThreadFewer&) = delete;
  OneThreadFewer& operator=(const OneThreadFewer&) = delete;

 private:
  int all_;
};

}  // namespace clipcap
