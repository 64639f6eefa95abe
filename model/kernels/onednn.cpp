#include "model/kernels/onednn.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <cstdlib>
#include <cstring>

namespace clipcap {

dnnl::engine& onednn_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

int64_t onednn_bits(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}

namespace {
struct KeyHash {
  size_t operator()(const OnednnKey& k) const {
    size_t h = k.size();
    for (int64_t v : k) h ^= static_cast<size_t>(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
  }
};
}  // namespace

const OnednnOp& onednn_op(const OnednnKey& key, const std::function<OnednnOp()>& make) {
  // Per thread count too: a primitive splits its work for the threads there were when it was made
  // and keeps that split (one made while the video reader had a core ran on one thread ever after).
  thread_local std::unordered_map<int, std::unordered_map<OnednnKey, OnednnOp, KeyHash>> caches;
  auto& cache = caches[at::get_num_threads()];
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() >= 1024) cache.clear();  // many prompt lengths: bound the memory, not the speed
  OnednnOp op;
  try {
    op = make();
  } catch (const dnnl::error&) {
    op = OnednnOp{};
    op.supported = false;
  }
  return cache.emplace(key, std::move(op)).first->second;
}

bool onednn_inference(const torch::Tensor& t) {
  static const bool blas_only = std::getenv("CLIPCAP_BLAS_LINEAR") != nullptr;
  const auto s = t.scalar_type();
  return !blas_only && !at::GradMode::is_enabled() && !at::autocast::is_cpu_enabled() && t.device().is_cpu() &&
         (s == at::kFloat || s == at::kBFloat16) && t.numel() > 0;
}

dnnl::memory::data_type onednn_dtype(at::ScalarType t) {
  return t == at::kFloat ? dnnl::memory::data_type::f32 : dnnl::memory::data_type::bf16;
}

dnnl::memory onednn_memory(const dnnl::memory::desc& desc, const torch::Tensor& t) {
  return dnnl::memory(desc, onednn_engine(), t.data_ptr());
}

void onednn_run(const OnednnOp& op, std::unordered_map<int, dnnl::memory>&& args) {
  // oneDNN's OpenMP threads follow this thread's count; libtorch sets it lazily per thread.
  at::internal::lazy_init_num_threads();
  dnnl::stream stream(onednn_engine());
  op.primitive.execute(stream, args);
  stream.wait();
}

}  // namespace clipcap
