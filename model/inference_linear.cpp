#include "model/inference_linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <dnnl.hpp>

#include <cstdlib>
#include <tuple>
#include <unordered_map>

namespace clipcap {

namespace {

using dnnl::memory;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

struct Epilogue {
  dnnl::algorithm alg = dnnl::algorithm::undef;
  float alpha = 0.f, beta = 0.f;
};

// The activations oneDNN computes in its GEMM's epilogue, on the f32 accumulator.
Epilogue epilogue_of(Activation act) {
  if (act == quick_gelu) return {dnnl::algorithm::eltwise_swish, 1.702f};  // x * sigmoid(1.702 x)
  if (act == silu) return {dnnl::algorithm::eltwise_swish, 1.f};
  if (act == gelu) return {dnnl::algorithm::eltwise_gelu_erf};
  if (act == gelu_new) return {dnnl::algorithm::eltwise_gelu_tanh};
  if (act == relu) return {dnnl::algorithm::eltwise_relu};
  return {};
}

// Few rows: a matrix-vector-like product, where the inner-product primitive streams the weights
// best; from 16 rows on, matmul's blocked kernels (both measured, bench/README.md).
constexpr int64_t kMatmulMinRows = 16;

// M, K, N, dtype, layout, activation and its alpha, beta (quick_gelu and silu are one algorithm), bias
using Key = std::tuple<int64_t, int64_t, int64_t, int, int, int, float, float, bool>;

struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = 0;
    auto mix = [&h](size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
    mix(std::get<0>(k)); mix(std::get<1>(k)); mix(std::get<2>(k)); mix(std::get<3>(k));
    mix(std::get<4>(k)); mix(std::get<5>(k)); mix(std::hash<float>()(std::get<6>(k)));
    mix(std::hash<float>()(std::get<7>(k))); mix(std::get<8>(k));
    return h;
  }
};

struct Prepared {
  dnnl::primitive primitive;
  memory::desc src, weights, bias, dst;
};

// Creating a primitive descriptor costs tens of microseconds, as much as a decoding step's
// small products: each is made once per shape. Per thread, because a primitive shares its
// scratchpad between executions.
Prepared prepare(int64_t M, int64_t K, int64_t N, memory::data_type dt, WeightLayout layout, const Epilogue& ep,
                 bool has_bias) {
  dnnl::primitive_attr attr;
  if (ep.alg != dnnl::algorithm::undef) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, ep.alg, ep.alpha, ep.beta);
    attr.set_post_ops(ops);
  }
  Prepared p;
  p.src = memory::desc({M, K}, dt, memory::format_tag::ab);
  p.dst = memory::desc({M, N}, dt, memory::format_tag::ab);
  const bool stored_out_in = layout == WeightLayout::out_in;
  if (M >= kMatmulMinRows) {
    p.weights = memory::desc({K, N}, dt, stored_out_in ? memory::format_tag::ba : memory::format_tag::ab);
    if (has_bias) p.bias = memory::desc({1, N}, dt, memory::format_tag::ab);
    dnnl::matmul::desc desc = has_bias ? dnnl::matmul::desc(p.src, p.weights, p.bias, p.dst)
                                       : dnnl::matmul::desc(p.src, p.weights, p.dst);
    p.primitive = dnnl::matmul(dnnl::matmul::primitive_desc(desc, attr, cpu_engine()));
  } else {
    p.weights = memory::desc({N, K}, dt, stored_out_in ? memory::format_tag::ab : memory::format_tag::ba);
    if (has_bias) p.bias = memory::desc({N}, dt, memory::format_tag::a);
    const auto kind = dnnl::prop_kind::forward_inference;
    dnnl::inner_product_forward::desc desc = has_bias
        ? dnnl::inner_product_forward::desc(kind, p.src, p.weights, p.bias, p.dst)
        : dnnl::inner_product_forward::desc(kind, p.src, p.weights, p.dst);
    p.primitive = dnnl::inner_product_forward(dnnl::inner_product_forward::primitive_desc(desc, attr, cpu_engine()));
  }
  return p;
}

const Prepared& prepared(int64_t M, int64_t K, int64_t N, memory::data_type dt, WeightLayout layout,
                         const Epilogue& ep, bool has_bias) {
  thread_local std::unordered_map<Key, Prepared, KeyHash> cache;
  const Key key{M, K, N, static_cast<int>(dt), static_cast<int>(layout), static_cast<int>(ep.alg), ep.alpha, ep.beta,
                has_bias};
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() >= 512) cache.clear();  // many prompt lengths: bound the memory, not the speed
  return cache.emplace(key, prepare(M, K, N, dt, layout, ep, has_bias)).first->second;
}

bool onednn_dtype(at::ScalarType t) { return t == at::kFloat || t == at::kBFloat16; }

torch::Tensor blas_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                          WeightLayout layout) {
  if (layout == WeightLayout::out_in) {
    // One f32 row (batch-1 decoding): gemv streams the weight once; sgemm would repack it.
    if (x.numel() == x.size(-1) && !bias.defined() && weight.scalar_type() == at::kFloat) {
      auto out_shape = x.sizes().vec();
      out_shape.back() = weight.size(0);
      return at::mv(weight, x.reshape({-1})).view(out_shape);
    }
    return at::linear(x, weight, bias);
  }
  auto out_shape = x.sizes().vec();
  out_shape.back() = weight.size(1);
  const torch::Tensor rows = x.reshape({-1, weight.size(0)});
  if (rows.size(0) == 1 && weight.scalar_type() == at::kFloat && bias.defined())
    return at::addmv(bias, weight.t(), rows[0]).view(out_shape);
  if (!bias.defined()) return at::mm(rows, weight).view(out_shape);
  return at::addmm(bias, rows, weight).view(out_shape);
}

}  // namespace

bool inference_linear_uses_onednn(const torch::Tensor& x, const torch::Tensor& weight) {
  static const bool blas_only = std::getenv("CLIPCAP_BLAS_LINEAR") != nullptr;
  return !blas_only && !at::GradMode::is_enabled() && !at::autocast::is_cpu_enabled() && x.device().is_cpu() &&
         weight.device().is_cpu() && onednn_dtype(x.scalar_type()) && x.scalar_type() == weight.scalar_type() &&
         x.dim() >= 1 && weight.dim() == 2 && x.numel() > 0;
}

torch::Tensor inference_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                               WeightLayout layout, Activation act) {
  const bool stored_out_in = layout == WeightLayout::out_in;
  const int64_t K = weight.size(stored_out_in ? 1 : 0), N = weight.size(stored_out_in ? 0 : 1);
  const Epilogue ep = act ? epilogue_of(act) : Epilogue{};
  const bool fused_act = !act || ep.alg != dnnl::algorithm::undef;
  if (!inference_linear_uses_onednn(x, weight) || !fused_act ||
      (bias.defined() && bias.scalar_type() != x.scalar_type())) {
    torch::Tensor y = blas_linear(x, weight, bias, layout);
    return act ? act(y) : y;
  }
  TORCH_CHECK(x.size(-1) == K, "inference_linear: input has ", x.size(-1), " features, the weight expects ", K);
  auto out_shape = x.sizes().vec();
  out_shape.back() = N;
  const torch::Tensor rows = x.reshape({-1, K}).contiguous();
  const torch::Tensor w = weight.contiguous();
  const torch::Tensor b = bias.defined() ? bias.contiguous() : bias;
  const int64_t M = rows.size(0);
  torch::Tensor out = at::empty({M, N}, x.options());

  const memory::data_type dt = x.scalar_type() == at::kFloat ? memory::data_type::f32 : memory::data_type::bf16;
  const Prepared& p = prepared(M, K, N, dt, layout, ep, b.defined());
  // oneDNN's OpenMP threads follow this thread's count; libtorch sets it lazily per thread.
  at::internal::lazy_init_num_threads();
  dnnl::engine& engine = cpu_engine();
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, memory(p.src, engine, rows.data_ptr())},
      {DNNL_ARG_WEIGHTS, memory(p.weights, engine, w.data_ptr())},
      {DNNL_ARG_DST, memory(p.dst, engine, out.data_ptr())},
  };
  if (b.defined()) args.emplace(DNNL_ARG_BIAS, memory(p.bias, engine, b.data_ptr()));
  dnnl::stream stream(engine);
  p.primitive.execute(stream, args);
  stream.wait();
  return out.view(out_shape);
}

torch::Tensor inference_linear(torch::nn::Linear& linear, const torch::Tensor& x, Activation act) {
  return inference_linear(x, linear->weight, linear->bias, WeightLayout::out_in, act);
}

}  // namespace clipcap
