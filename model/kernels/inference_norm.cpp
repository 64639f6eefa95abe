#include "model/kernels/inference_norm.h"

#include <ATen/ATen.h>

#include <unordered_map>

#include "model/kernels/onednn.h"

namespace clipcap {

namespace {

// oneDNN's layer norm takes f32 scale and shift; converting a bf16 model's 768 values each call
// cost ~20 us, 50 times per GPT-2 step. Kept per thread (no locking), per parameter tensor, and
// made again when the tensor is modified in place (its version counter moves).
const torch::Tensor& as_f32(const torch::Tensor& p) {
  if (p.scalar_type() == at::kFloat && p.is_contiguous()) return p;
  struct Entry {
    torch::Tensor source, f32;  // source keeps the parameter alive, so its address is not reused
    uint32_t version = 0;
  };
  thread_local std::unordered_map<const void*, Entry> cache;
  Entry& e = cache[p.unsafeGetTensorImpl()];
  if (!e.f32.defined() || !e.source.is_same(p) || e.version != p._version()) {
    e.source = p;
    e.f32 = p.to(at::kFloat).contiguous();
    e.version = p._version();
  }
  return e.f32;
}

}  // namespace

torch::Tensor inference_layer_norm(torch::nn::LayerNorm& ln, const torch::Tensor& x) {
  const auto& shape = ln->options.normalized_shape();
  const bool applies = onednn_inference(x) && x.scalar_type() == at::kBFloat16 && shape.size() == 1 &&
                       x.dim() >= 1 && x.size(-1) == shape[0] && ln->weight.defined() && ln->bias.defined();
  if (!applies) return ln->forward(x);
  const int64_t D = shape[0];
  const torch::Tensor rows = x.reshape({-1, D}).contiguous();
  const int64_t M = rows.size(0);
  const float eps = static_cast<float>(ln->options.eps());
  using dnnl::memory;
  const OnednnOp& op = onednn_op({2, M, D, onednn_bits(eps)}, [&] {
    OnednnOp made;
    made.descs = {memory::desc({M, D}, memory::data_type::bf16, memory::format_tag::ab),
                  memory::desc({D}, memory::data_type::f32, memory::format_tag::a)};
    const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    made.primitive = dnnl::layer_normalization_forward(dnnl::layer_normalization_forward::primitive_desc(
        dnnl::layer_normalization_forward::desc(dnnl::prop_kind::forward_inference, made.descs[0], eps, flags),
        onednn_engine()));
    return made;
  });
  if (!op.supported) return ln->forward(x);
  const torch::Tensor &scale = as_f32(ln->weight), &shift = as_f32(ln->bias);
  torch::Tensor out = at::empty_like(rows);
  onednn_run(op, {{DNNL_ARG_SRC, onednn_memory(op.descs[0], rows)},
                  {DNNL_ARG_DST, onednn_memory(op.descs[0], out)},
                  {DNNL_ARG_SCALE, onednn_memory(op.descs[1], scale)},
                  {DNNL_ARG_SHIFT, onednn_memory(op.descs[1], shift)}});
  return out.view(x.sizes());
}

torch::Tensor inference_softmax(const torch::Tensor& x) {
  auto reference = [&] {
    return x.scalar_type() == at::kFloat ? at::softmax(x, -1) : at::softmax(x, -1, at::kFloat).to(x.scalar_type());
  };
  if (!onednn_inference(x) || x.scalar_type() != at::kBFloat16 || x.dim() < 1) return reference();
  const torch::Tensor rows = x.reshape({-1, x.size(-1)}).contiguous();
  const int64_t M = rows.size(0), N = rows.size(1);
  using dnnl::memory;
  const OnednnOp& op = onednn_op({3, M, N}, [&] {
    OnednnOp made;
    made.descs = {memory::desc({M, N}, memory::data_type::bf16, memory::format_tag::ab)};
    made.primitive = dnnl::softmax_forward(dnnl::softmax_forward::primitive_desc(
        dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, made.descs[0], 1), onednn_engine()));
    return made;
  });
  if (!op.supported) return reference();
  torch::Tensor out = at::empty_like(rows);
  onednn_run(op, {{DNNL_ARG_SRC, onednn_memory(op.descs[0], rows)}, {DNNL_ARG_DST, onednn_memory(op.descs[0], out)}});
  return out.view(x.sizes());
}

torch::Tensor inference_log_softmax(const torch::Tensor& x) {
  auto reference = [&] { return at::log_softmax(x, -1, at::kFloat); };
  if (!onednn_inference(x) || x.dim() < 1 || x.numel() == 0) return reference();
  const torch::Tensor rows = x.reshape({-1, x.size(-1)}).contiguous();
  const int64_t M = rows.size(0), N = rows.size(1);
  using dnnl::memory;
  const memory::data_type dt = onednn_dtype(x.scalar_type());
  const OnednnOp& op = onednn_op({4, M, N, static_cast<int64_t>(dt)}, [&] {
    OnednnOp made;
    made.descs = {memory::desc({M, N}, dt, memory::format_tag::ab), memory::desc({M, N}, memory::data_type::f32, memory::format_tag::ab)};
    made.primitive = dnnl::softmax_v2_forward(dnnl::softmax_v2_forward::primitive_desc(
        dnnl::softmax_v2_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::softmax_log, made.descs[0],
                                       made.descs[1], 1),
        onednn_engine()));
    return made;
  });
  if (!op.supported) return reference();
  torch::Tensor out = at::empty({M, N}, rows.options().dtype(at::kFloat));
  onednn_run(op, {{DNNL_ARG_SRC, onednn_memory(op.descs[0], rows)}, {DNNL_ARG_DST, onednn_memory(op.descs[1], out)}});
  auto shape = x.sizes().vec();
  return out.view(shape);
}

}  // namespace clipcap
