#include "model/kernels/inference_matmul.h"

#include <ATen/ATen.h>
#include <c10/util/strides.h>

#include "model/kernels/int8_linear.h"
#include "model/kernels/onednn.h"
#include "model/kernels/packed_weights.h"

namespace clipcap {

namespace {

using dnnl::memory;

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

// Weights in their stored layout (not packed yet, or packing off): with few rows, a matrix-vector-like
// product, where the inner-product primitive streams the weights best; from 16 rows on, matmul's
// blocked kernels (the crossover measured on GPT-2 and CLIP shapes:
// bench/README.md, "Measurements behind code decisions").
constexpr int64_t kMatmulMinRows = 16;

enum Desc { kSrc, kWeights, kBias, kDst };  // OnednnOp::descs

dnnl::primitive_attr attr_of(const Epilogue& ep) {
  dnnl::primitive_attr attr;
  if (ep.alg != dnnl::algorithm::undef) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, ep.alg, ep.alpha, ep.beta);
    attr.set_post_ops(ops);
  }
  return attr;
}

// The weights' stored layout as matmul's (K, N) operand.
memory::desc plain_weights(int64_t K, int64_t N, memory::data_type dt, WeightLayout layout) {
  return memory::desc({K, N}, dt, layout == WeightLayout::out_in ? memory::format_tag::ba : memory::format_tag::ab);
}

OnednnOp prepare_linear(int64_t M, int64_t K, int64_t N, memory::data_type dt, memory::data_type out_dt,
                        WeightLayout layout, const Epilogue& ep, bool has_bias, bool matmul_only) {
  const dnnl::primitive_attr attr = attr_of(ep);
  OnednnOp op;
  op.descs.resize(4);
  memory::desc &src = op.descs[kSrc], &weights = op.descs[kWeights], &bias = op.descs[kBias], &dst = op.descs[kDst];
  src = memory::desc({M, K}, dt, memory::format_tag::ab);
  dst = memory::desc({M, N}, out_dt, memory::format_tag::ab);
  const bool stored_out_in = layout == WeightLayout::out_in;
  if (M >= kMatmulMinRows || matmul_only) {
    weights = plain_weights(K, N, dt, layout);
    if (has_bias) bias = memory::desc({1, N}, dt, memory::format_tag::ab);
    dnnl::matmul::desc desc = has_bias ? dnnl::matmul::desc(src, weights, bias, dst) : dnnl::matmul::desc(src, weights, dst);
    op.primitive = dnnl::matmul(dnnl::matmul::primitive_desc(desc, attr, onednn_engine()));
  } else {
    weights = memory::desc({N, K}, dt, stored_out_in ? memory::format_tag::ab : memory::format_tag::ba);
    if (has_bias) bias = memory::desc({N}, dt, memory::format_tag::a);
    const auto kind = dnnl::prop_kind::forward_inference;
    dnnl::inner_product_forward::desc desc = has_bias ? dnnl::inner_product_forward::desc(kind, src, weights, bias, dst)
                                                      : dnnl::inner_product_forward::desc(kind, src, weights, dst);
    op.primitive = dnnl::inner_product_forward(dnnl::inner_product_forward::primitive_desc(desc, attr, onednn_engine()));
  }
  return op;
}

// matmul for any number of rows with the weights in the layout its kernel prefers (descs[kWeights]),
// packed once by packed_weight(). Unsupported where that kernel is oneDNN's reference code or the
// preferred layout is the stored one (nothing to gain).
OnednnOp prepare_packed_linear(int64_t M, int64_t K, int64_t N, memory::data_type dt, memory::data_type out_dt,
                               WeightLayout layout, const Epilogue& ep, bool has_bias) {
  const dnnl::primitive_attr attr = attr_of(ep);
  OnednnOp op;
  op.descs.resize(4);
  op.descs[kSrc] = memory::desc({M, K}, dt, memory::format_tag::ab);
  op.descs[kDst] = memory::desc({M, N}, out_dt, memory::format_tag::ab);
  if (has_bias) op.descs[kBias] = memory::desc({1, N}, dt, memory::format_tag::ab);
  const memory::desc any({K, N}, dt, memory::format_tag::any);
  dnnl::matmul::desc desc = has_bias ? dnnl::matmul::desc(op.descs[kSrc], any, op.descs[kBias], op.descs[kDst])
                                     : dnnl::matmul::desc(op.descs[kSrc], any, op.descs[kDst]);
  dnnl::matmul::primitive_desc pd(desc, attr, onednn_engine());
  op.descs[kWeights] = pd.weights_desc();
  const std::string impl = pd.impl_info_str();
  op.supported = impl.find("ref") == std::string::npos && !(op.descs[kWeights] == plain_weights(K, N, dt, layout));
  if (op.supported) op.primitive = dnnl::matmul(pd);
  return op;
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

bool runs_on_onednn(const torch::Tensor& a, const torch::Tensor& b) {
  return onednn_inference(a) && onednn_inference(b) && a.scalar_type() == b.scalar_type();
}

}  // namespace

bool inference_linear_uses_onednn(const torch::Tensor& x, const torch::Tensor& weight) {
  return runs_on_onednn(x, weight) && x.dim() >= 1 && weight.dim() == 2;
}

torch::Tensor inference_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                               WeightLayout layout, Activation act, c10::optional<at::ScalarType> out_dtype) {
  const bool stored_out_in = layout == WeightLayout::out_in;
  const int64_t K = weight.size(stored_out_in ? 1 : 0), N = weight.size(stored_out_in ? 0 : 1);
  const Epilogue ep = act ? epilogue_of(act) : Epilogue{};
  const bool fused_act = !act || ep.alg != dnnl::algorithm::undef;
  const at::ScalarType result_dtype = out_dtype.value_or(x.scalar_type());
  auto libtorchs = [&] {
    torch::Tensor y = blas_linear(x, weight, bias, layout);
    return (act ? act(y) : y).to(result_dtype);
  };
  if (!inference_linear_uses_onednn(x, weight) || !fused_act || (bias.defined() && bias.scalar_type() != x.scalar_type()) ||
      (result_dtype != at::kFloat && result_dtype != x.scalar_type()))
    return libtorchs();
  TORCH_CHECK(x.size(-1) == K, "inference_linear: input has ", x.size(-1), " features, the weight expects ", K);
  auto out_shape = x.sizes().vec();
  out_shape.back() = N;
  const torch::Tensor rows = x.reshape({-1, K}).contiguous();
  const torch::Tensor w = weight.contiguous();
  const torch::Tensor b = bias.defined() ? bias.contiguous() : bias;
  const int64_t M = rows.size(0);
  const memory::data_type dt = onednn_dtype(x.scalar_type()), out_dt = onednn_dtype(result_dtype);
  const OnednnKey shape{M, K, N, static_cast<int64_t>(dt), static_cast<int64_t>(out_dt), static_cast<int64_t>(layout),
                        static_cast<int64_t>(ep.alg), onednn_bits(ep.alpha), onednn_bits(ep.beta), b.defined()};
  auto run = [&](const OnednnOp& op, const torch::Tensor& weights) {
    torch::Tensor out = at::empty({M, N}, x.options().dtype(result_dtype));
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, onednn_memory(op.descs[kSrc], rows)},
        {DNNL_ARG_WEIGHTS, onednn_memory(op.descs[kWeights], weights)},
        {DNNL_ARG_DST, onednn_memory(op.descs[kDst], out)},
    };
    if (b.defined()) args.emplace(DNNL_ARG_BIAS, onednn_memory(op.descs[kBias], b));
    onednn_run(op, std::move(args));
    return out.view(out_shape);
  };
  bool matmul_only = false;
  if (weight_packing_enabled() && weight.is_contiguous()) {
    OnednnKey key{2};
    key.insert(key.end(), shape.begin(), shape.end());
    const OnednnOp& op = onednn_op(key, [&] { return prepare_packed_linear(M, K, N, dt, out_dt, layout, ep, b.defined()); });
    const PackedWeight packed = op.supported ? packed_weight(weight, plain_weights(K, N, dt, layout), op.descs[kWeights])
                                             : PackedWeight{};
    if (packed.bytes.defined()) return run(op, packed.bytes);
    // A frozen weight not packed yet: the same matmul kernel on the stored layout (it packs a copy
    // itself), whose results are bit for bit the packed run's, so no result depends on whether
    // this weight was seen before (a resumed job writes what an uninterrupted one does).
    matmul_only = packed.frozen;
  }
  OnednnKey key{0, matmul_only};
  key.insert(key.end(), shape.begin(), shape.end());
  const OnednnOp& op = onednn_op(key, [&] { return prepare_linear(M, K, N, dt, out_dt, layout, ep, b.defined(), matmul_only); });
  if (!op.supported) return libtorchs();
  return run(op, w);
}

void freeze_weights_for_inference(const torch::nn::Module& module) {
  for (const auto& p : module.parameters()) freeze_weight(p);
  for (const auto& b : module.buffers()) freeze_weight(b);
}

torch::Tensor inference_linear(torch::nn::Linear& linear, const torch::Tensor& x, Activation act) {
  if (is_quantized_int8(linear->weight)) return int8_linear(x, int8_parameter(*linear, "weight"), linear->bias, act);
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
  OnednnKey key{1, nd, static_cast<int64_t>(dt), b.size(-1)};
  for (int64_t i = 0; i < nd; ++i) {
    key.push_back(a.size(i));
    key.push_back(a.stride(i));
    key.push_back(b.stride(i));
  }
  const OnednnOp& op = onednn_op(key, [&] {
    OnednnOp made;
    const auto dense = c10::contiguous_strides(out_shape);
    made.descs = {memory::desc(a.sizes().vec(), dt, a.strides().vec()), memory::desc(b.sizes().vec(), dt, b.strides().vec()),
                  memory::desc(), memory::desc(out_shape, dt, memory::dims(dense.begin(), dense.end()))};
    made.primitive = dnnl::matmul(dnnl::matmul::primitive_desc(
        dnnl::matmul::desc(made.descs[kSrc], made.descs[kWeights], made.descs[kDst]), onednn_engine()));
    return made;
  });
  if (!op.supported) return torch::matmul(a, b);
  torch::Tensor out = at::empty(out_shape, a.options());
  onednn_run(op, {{DNNL_ARG_SRC, onednn_memory(op.descs[kSrc], a)},
                  {DNNL_ARG_WEIGHTS, onednn_memory(op.descs[kWeights], b)},
                  {DNNL_ARG_DST, onednn_memory(op.descs[kDst], out)}});
  return out;
}

}  // namespace clipcap
