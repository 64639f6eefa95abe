#include "model/inference_matmul.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <c10/util/strides.h>
#include <dnnl.hpp>

#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <vector>

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

// Everything a primitive depends on: kind, shapes, strides, dtype, epilogue (as integers).
using Key = std::vector<int64_t>;

struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = k.size();
    for (int64_t v : k) h ^= static_cast<size_t>(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
  }
};

int64_t bits(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}

struct Prepared {
  dnnl::primitive primitive;
  memory::desc src, weights, bias, dst;
  bool supported = true;  // false: oneDNN has no kernel for these strides; use libtorch
};

// Creating a primitive descriptor costs tens of microseconds, as much as a decoding step's
// small products: each is made once per shape. Per thread, because a primitive shares its
// scratchpad between executions.
template <class Make>
const Prepared& prepared(const Key& key, Make make) {
  thread_local std::unordered_map<Key, Prepared, KeyHash> cache;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() >= 1024) cache.clear();  // many prompt lengths: bound the memory, not the speed
  Prepared p;
  try {
    p = make();
  } catch (const dnnl::error&) {
    p.supported = false;
  }
  return cache.emplace(key, std::move(p)).first->second;
}

void execute(const Prepared& p, std::unordered_map<int, memory>&& args) {
  // oneDNN's OpenMP threads follow this thread's count; libtorch sets it lazily per thread.
  at::internal::lazy_init_num_threads();
  dnnl::stream stream(cpu_engine());
  p.primitive.execute(stream, args);
  stream.wait();
}

memory::data_type onednn_dtype(at::ScalarType t) {
  return t == at::kFloat ? memory::data_type::f32 : memory::data_type::bf16;
}

bool runs_on_onednn(const torch::Tensor& a, const torch::Tensor& b) {
  static const bool blas_only = std::getenv("CLIPCAP_BLAS_LINEAR") != nullptr;
  const auto t = a.scalar_type();
  return !blas_only && !at::GradMode::is_enabled() && !at::autocast::is_cpu_enabled() && a.device().is_cpu() &&
         b.device().is_cpu() && (t == at::kFloat || t == at::kBFloat16) && b.scalar_type() == t && a.numel() > 0 &&
         b.numel() > 0;
}

Prepared prepare_linear(int64_t M, int64_t K, int64_t N, memory::data_type dt, WeightLayout layout,
                        const Epilogue& ep, bool has_bias) {
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
  return runs_on_onednn(x, weight) && x.dim() >= 1 && weight.dim() == 2;
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
  const memory::data_type dt = onednn_dtype(x.scalar_type());
  const Key key{0, M, K, N, static_cast<int64_t>(dt), static_cast<int64_t>(layout), static_cast<int64_t>(ep.alg),
                bits(ep.alpha), bits(ep.beta), b.defined()};
  const Prepared& p = prepared(key, [&] { return prepare_linear(M, K, N, dt, layout, ep, b.defined()); });
  if (!p.supported) {
    torch::Tensor y = blas_linear(x, weight, bias, layout);
    return act ? act(y) : y;
  }
  torch::Tensor out = at::empty({M, N}, x.options());
  dnnl::engine& engine = cpu_engine();
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, memory(p.src, engine, rows.data_ptr())},
      {DNNL_ARG_WEIGHTS, memory(p.weights, engine, w.data_ptr())},
      {DNNL_ARG_DST, memory(p.dst, engine, out.data_ptr())},
  };
  if (b.defined()) args.emplace(DNNL_ARG_BIAS, memory(p.bias, engine, b.data_ptr()));
  execute(p, std::move(args));
  return out.view(out_shape);
}

torch::Tensor inference_linear(torch::nn::Linear& linear, const torch::Tensor& x, Activation act) {
  return inference_linear(x, linear->weight, linear->bias, WeightLayout::out_in, act);
}

torch::Tensor inference_matmul(const torch::Tensor& a, const torch::Tensor& b) {
  const int64_t nd = a.dim();
  if (!runs_on_onednn(a, b) || nd < 2 || nd > 6 || b.dim() != nd || a.sizes().slice(0, nd - 2) != b.sizes().slice(0, nd - 2) ||
      a.size(-1) != b.size(-2))
    return torch::matmul(a, b);
  auto out_shape = a.sizes().vec();
  out_shape.back() = b.size(-1);
  const memory::data_type dt = onednn_dtype(a.scalar_type());
  Key key{1, nd, static_cast<int64_t>(dt), b.size(-1)};
  for (int64_t i = 0; i < nd; ++i) {
    key.push_back(a.size(i));
    key.push_back(a.stride(i));
    key.push_back(b.stride(i));
  }
  const Prepared& p = prepared(key, [&] {
    Prepared q;
    q.src = memory::desc(a.sizes().vec(), dt, a.strides().vec());
    q.weights = memory::desc(b.sizes().vec(), dt, b.strides().vec());
    const auto dense = c10::contiguous_strides(out_shape);
    q.dst = memory::desc(out_shape, dt, memory::dims(dense.begin(), dense.end()));
    q.primitive = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(q.src, q.weights, q.dst), cpu_engine()));
    return q;
  });
  if (!p.supported) return torch::matmul(a, b);
  torch::Tensor out = at::empty(out_shape, a.options());
  dnnl::engine& engine = cpu_engine();
  execute(p, {{DNNL_ARG_SRC, memory(p.src, engine, a.data_ptr())},
              {DNNL_ARG_WEIGHTS, memory(p.weights, engine, b.data_ptr())},
              {DNNL_ARG_DST, memory(p.dst, engine, out.data_ptr())}});
  return out;
}

}  // namespace clipcap
