#include "model/kernels/decode_attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace clipcap {

namespace {

template <typename T>
void attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, float scale, torch::Tensor& out) {
  const int64_t B = q.size(0), H = q.size(1), P = k.size(2), hd = q.size(3);
  const T* qp = q.data_ptr<T>();
  const T* kp = k.data_ptr<T>();
  const T* vp = v.data_ptr<T>();
  T* op = out.data_ptr<T>();
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> qf(hd), acc(hd), w(P);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const T* qr = qp + b * q.stride(0) + h * q.stride(1);
      for (int64_t d = 0; d < hd; ++d) qf[d] = static_cast<float>(qr[d]);
      const T* kr = kp + b * k.stride(0) + h * k.stride(1);
      float top = -INFINITY;
      for (int64_t p = 0; p < P; ++p) {
        const T* key = kr + p * k.stride(2);
        float s = 0.f;
        for (int64_t d = 0; d < hd; ++d) s += qf[d] * static_cast<float>(key[d]);
        w[p] = s * scale;
        top = std::max(top, w[p]);
      }
      float total = 0.f;
      for (int64_t p = 0; p < P; ++p) total += (w[p] = std::exp(w[p] - top));
      std::fill(acc.begin(), acc.end(), 0.f);
      const T* vr = vp + b * v.stride(0) + h * v.stride(1);
      for (int64_t p = 0; p < P; ++p) {
        const T* value = vr + p * v.stride(2);
        const float wp = w[p] / total;
        for (int64_t d = 0; d < hd; ++d) acc[d] += wp * static_cast<float>(value[d]);
      }
      T* o = op + b * H * hd + h * hd;
      for (int64_t d = 0; d < hd; ++d) o[d] = static_cast<T>(acc[d]);
    }
  });
}

}  // namespace

bool decode_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  if (c10::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad())) return false;
  const auto dt = q.scalar_type();
  return q.device().is_cpu() && k.device().is_cpu() && v.device().is_cpu() && (dt == at::kFloat || dt == at::kBFloat16) &&
         k.scalar_type() == dt && v.scalar_type() == dt && q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && q.size(2) == 1 &&
         k.sizes() == v.sizes() && k.size(0) == q.size(0) && k.size(1) == q.size(1) && k.size(3) == q.size(3) &&
         k.size(2) > 0 && q.stride(3) == 1 && k.stride(3) == 1 && v.stride(3) == 1;
}

torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  TORCH_CHECK(decode_attention_applies(q, k, v), "decode_attention: expected q (B, H, 1, hd), k and v (B, H, P, hd)");
  const int64_t B = q.size(0), H = q.size(1), hd = q.size(3);
  torch::Tensor out = at::empty({B, 1, H * hd}, q.options());
  if (q.scalar_type() == at::kFloat)
    attend<float>(q, k, v, static_cast<float>(scale), out);
  else
    attend<at::BFloat16>(q, k, v, static_cast<float>(scale), out);
  return out;
}

}  // namespace clipcap
