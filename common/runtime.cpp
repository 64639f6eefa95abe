#include "common/runtime.h"

#include <torch/cuda.h>
#include <torch/utils.h>

#include <thread>

#include "common/allocator.h"
#include "common/error.h"

namespace clipcap {

int available_cores() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

torch::ScalarType parse_dtype(const std::string& name) {
  if (name == "f32" || name == "fp32" || name == "float32" || name == "float") return torch::kFloat32;
  if (name == "bf16" || name == "bfloat16") return torch::kBFloat16;
  if (name == "f16" || name == "fp16" || name == "float16" || name == "half") return torch::kFloat16;
  if (name == "int8")
    throw Error("--dtype int8 (int8 weights) is for captioning only (clipcap-infer, clipcap-eval, clipcap-serve); use f32 or bf16");
  throw Error("unknown dtype '" + name + "' (expected f32 or bf16)");
}

torch::ScalarType RuntimeOptions::torch_dtype() const { return int8_weights() ? torch::kFloat32 : parse_dtype(dtype); }
torch::ScalarType RuntimeOptions::float_dtype() const { return parse_dtype(dtype); }

torch::Device RuntimeOptions::torch_device() const {
  if (device == "cpu") return torch::kCPU;
  if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error("--device " + device + ": this libtorch has no CUDA support or no GPU is visible");
    return torch::Device(device);
  }
  throw Error("unknown device '" + device + "' (expected cpu or cuda)");
}

void apply_runtime(const RuntimeOptions& opts) {
  if (opts.threads < 0) throw Error("--threads must be >= 0 (0 = all cores)");
  int n = opts.threads == 0 ? available_cores() : opts.threads;
  torch::set_num_threads(n);
  keep_freed_tensor_memory();
  (void)opts.torch_dtype();
  (void)opts.torch_device();
}

OneThreadFewer::OneThreadFewer() : all_(torch::get_num_threads()) { reduce(); }

void OneThreadFewer::reduce() {
  if (all_ > 1 && torch::get_num_threads() != all_ - 1) torch::set_num_threads(all_ - 1);
}

void OneThreadFewer::restore() {
  if (all_ > 1 && torch::get_num_threads() != all_) torch::set_num_threads(all_);
}

}  // namespace clipcap
