#include "model/kernels/int8_linear.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

// gcc 12 reports _mm512_cvtepi8_epi32's deliberately undefined start value as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <atomic>

namespace clipcap {

namespace {

constexpr int64_t kPanel = kInt8PanelWidth;
// Rows of x per pass over a panel: 6 rows x 4 vectors of 16 outputs = 24 accumulators, which with
// the 4 widened weight vectors and a broadcast fits AVX-512's 32 registers.
constexpr int kRowBlock = 6;
constexpr int64_t kPrefetchAhead = 256 * kPanel;  // bytes: 16 KiB, measured best of 1-32 KiB

// One panel (64 outputs) against `rows` rows of x: out[r][j] = scale[j] * sum_k x[r][k] q[k][j] + bias[j].
struct PanelJob {
  const float* x;  // rows x K, row stride ldx
  int64_t ldx;
  const int8_t* panel;  // K x 64
  int64_t K;
  const float* scale;  // cols
  const float* bias;   // cols, or nullptr
  float* out;          // rows x cols, row stride ldo
  int64_t ldo;
  int cols;  // valid outputs in this panel (the last one may be partial)
};

template <int R>
__attribute__((target("avx512f"))) void panel_avx512(const PanelJob& j) {
  __m512 acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_setzero_ps();
  const int8_t* w = j.panel;
  for (int64_t k = 0; k < j.K; ++k, w += kPanel) {
    _mm_prefetch(reinterpret_cast<const char*>(w + kPrefetchAhead), _MM_HINT_T0);
    __m512 wv[4];
    for (int v = 0; v < 4; ++v)
      wv[v] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16 * v))));
    for (int r = 0; r < R; ++r) {
      const __m512 xr = _mm512_set1_ps(j.x[r * j.ldx + k]);
      for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_fmadd_ps(xr, wv[v], acc[r][v]);
    }
  }
  for (int v = 0; v < 4; ++v) {
    const int first = 16 * v;
    if (first >= j.cols) break;
    const __mmask16 mask = j.cols - first >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (j.cols - first)) - 1);
    const __m512 s = _mm512_maskz_loadu_ps(mask, j.scale + first);
    const __m512 b = j.bias ? _mm512_maskz_loadu_ps(mask, j.bias + first) : _mm512_setzero_ps();
    for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(j.out + r * j.ldo + first, mask, _mm512_fmadd_ps(acc[r][v], s, b));
  }
}

void panel_portable(const PanelJob& j, int rows) {
  for (int r = 0; r < rows; ++r) {
    float acc[kPanel] = {};
    const float* x = j.x + r * j.ldx;
    for (int64_t k = 0; k < j.K; ++k) {
      const int8_t* w = j.panel + k * kPanel;
      for (int c = 0; c < kPanel; ++c) acc[c] += x[k] * static_cast<float>(w[c]);
    }
    for (int c = 0; c < j.cols; ++c) j.out[r * j.ldo + c] = acc[c] * j.scale[c] + (j.bias ? j.bias[c] : 0.f);
  }
}

std::atomic<bool> force_portable{false};

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has && !force_portable.load(std::memory_order_relaxed);
}

void run_panel(const PanelJob& j, int rows) {
  if (!cpu_has_avx512()) return panel_portable(j, rows);
  switch (rows) {
    case 1: return panel_avx512<1>(j);
    case 2: return panel_avx512<2>(j);
    case 3: return panel_avx512<3>(j);
    case 4: return panel_avx512<4>(j);
    case 5: return panel_avx512<5>(j);
    default: return panel_avx512<6>(j);
  }
}

}  // namespace

bool int8_linear_uses_avx512() { return cpu_has_avx512(); }
void use_portable_int8_kernel(bool portable) { force_portable = portable; }

Int8Weight quantize_int8(const torch::Tensor& weight, WeightLayout layout) {
  TORCH_CHECK(weight.dim() == 2 && weight.is_floating_point(), "quantize_int8: expected a 2-d float weight");
  torch::NoGradGuard no_grad;
  const torch::Tensor w = (layout == WeightLayout::out_in ? weight : weight.t()).to(torch::kFloat);  // (N, K)
  const int64_t N = w.size(0), K = w.size(1), P = (N + kPanel - 1) / kPanel;
  torch::Tensor scales = w.abs().amax(1) / 127.0;
  scales = torch::where(scales > 0, scales, torch::ones_like(scales));  // an all-zero row stays zero
  torch::Tensor q = torch::round(w / scales.unsqueeze(1)).clamp(-127, 127).to(torch::kChar);  // (N, K)
  torch::Tensor rows = torch::zeros({P * kPanel, K}, torch::kChar);
  rows.narrow(0, 0, N).copy_(q);
  return {rows.view({P, kPanel, K}).permute({0, 2, 1}).contiguous(), scales.contiguous()};
}

torch::Tensor dequantize_int8(const Int8Weight& w) {
  const int64_t N = w.out_features(), K = w.in_features();
  torch::Tensor rows = w.panels.permute({0, 2, 1}).reshape({-1, K}).narrow(0, 0, N).to(torch::kFloat);
  return rows * w.scales.unsqueeze(1);
}

torch::Tensor int8_linear(const torch::Tensor& x, const Int8Weight& w, const torch::Tensor& bias, Activation act) {
  const int64_t K = w.in_features(), N = w.out_features(), P = w.panels.size(0);
  TORCH_CHECK(x.size(-1) == K, "int8_linear: input has ", x.size(-1), " features, the weight expects ", K);
  TORCH_CHECK(w.panels.scalar_type() == torch::kChar && w.panels.is_contiguous() && w.panels.size(2) == kPanel,
              "int8_linear: weight panels must be contiguous (P, K, 64) int8");
  TORCH_CHECK(!bias.defined() || bias.numel() == N, "int8_linear: bias has ", bias.numel(), " values, expected ", N);
  auto out_shape = x.sizes().vec();
  out_shape.back() = N;
  const torch::Tensor rows = x.reshape({-1, K}).to(torch::kFloat).contiguous();
  const int64_t M = rows.size(0);
  const torch::Tensor b = bias.defined() ? bias.to(torch::kFloat).contiguous() : torch::Tensor();
  torch::Tensor out = at::empty({M, N}, rows.options());
  const float* xp = rows.data_ptr<float>();
  const int8_t* wp = w.panels.data_ptr<int8_t>();
  float* op = out.data_ptr<float>();
  // Panels split between threads; each streams its panels once and runs all rows against each.
  at::parallel_for(0, P, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      PanelJob job{nullptr, K, wp + p * K * kPanel, K, w.scales.data_ptr<float>() + p * kPanel,
                   b.defined() ? b.data_ptr<float>() + p * kPanel : nullptr, nullptr, N,
                   static_cast<int>(std::min(kPanel, N - p * kPanel))};
      for (int64_t r = 0; r < M; r += kRowBlock) {
        job.x = xp + r * K;
        job.out = op + r * N + p * kPanel;
        run_panel(job, static_cast<int>(std::min<int64_t>(kRowBlock, M - r)));
      }
    }
  });
  if (act) out = act(out);
  return out.view(out_shape).to(x.scalar_type());
}

void quantize_parameter_int8(torch::nn::Module& owner, const std::string& name, WeightLayout layout) {
  torch::NoGradGuard no_grad;
  torch::Tensor* weight = owner.named_parameters(/*recurse=*/false).find(name);
  TORCH_CHECK(weight, "quantize_parameter_int8: ", owner.name(), " has no parameter '", name, "'");
  // The parameter's own tensor (shared with the module's member) is re-pointed at the panels.
  torch::Tensor param = *weight;
  const Int8Weight q = quantize_int8(param, layout);
  param.requires_grad_(false);
  param.set_data(q.panels);
  owner.register_buffer(name + "_scale", q.scales);
}

bool is_quantized_int8(const torch::Tensor& weight) { return weight.defined() && weight.scalar_type() == torch::kChar; }

Int8Weight int8_parameter(const torch::nn::Module& owner, const std::string& name) {
  const auto params = owner.named_parameters(/*recurse=*/false);
  const auto buffers = owner.named_buffers(/*recurse=*/false);
  const torch::Tensor* panels = params.find(name);
  const torch::Tensor* scales = buffers.find(name + "_scale");
  TORCH_CHECK(panels && scales && is_quantized_int8(*panels), "int8_parameter: ", owner.name(), "'s '", name,
              "' is not quantised");
  return {*panels, *scales};
}

torch::Tensor linear_forward(torch::nn::Linear& linear, const torch::Tensor& x) {
  if (is_quantized_int8(linear->weight)) return int8_linear(x, int8_parameter(*linear, "weight"), linear->bias);
  return linear->forward(x);
}

}  // namespace clipcap
