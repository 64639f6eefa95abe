#include "model/kernels/decode_attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

// gcc 12 reports the AVX-512 intrinsics' deliberately undefined start values as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace clipcap {

namespace {

// One (row, head): scores over the P cached keys, their softmax, the weighted sum of the values,
// all in f32; `out` gets hd f32 values. Written so the portable loops vectorise as far as the
// build's ISA allows; the AVX-512 version below keeps q and the sum in registers.
template <typename T>
void attend_one(const float* q, const T* keys, int64_t key_stride, const T* values, int64_t value_stride, int64_t P,
                int64_t hd, float scale, float* w, float* out) {
  float top = -INFINITY;
  for (int64_t p = 0; p < P; ++p) {
    const T* key = keys + p * key_stride;
    float s = 0.f;
    for (int64_t d = 0; d < hd; ++d) s += q[d] * static_cast<float>(key[d]);
    w[p] = s * scale;
    top = std::max(top, w[p]);
  }
  float total = 0.f;
  for (int64_t p = 0; p < P; ++p) total += (w[p] = std::exp(w[p] - top));
  std::fill(out, out + hd, 0.f);
  for (int64_t p = 0; p < P; ++p) {
    const T* value = values + p * value_stride;
    const float wp = w[p] / total;
    for (int64_t d = 0; d < hd; ++d) out[d] += wp * static_cast<float>(value[d]);
  }
}

// 16 values as f32: bf16 is the top half of an f32, so widening is a shift.
__attribute__((target("avx512f"))) inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
__attribute__((target("avx512f"))) inline __m512 load16(const at::BFloat16* p) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

constexpr int64_t kMaxChunks = 16;  // head_dim up to 256 in registers

// hd a multiple of 16, at most 16 * kMaxChunks. GPT-2 small, 16 rows: the scalar loops above
// were ~1.6 ms of a ~18 ms bf16 step (perf), their bf16 widening one value at a time.
template <typename T>
__attribute__((target("avx512f"))) void attend_one_avx512(const float* q, const T* keys, int64_t key_stride,
                                                           const T* values, int64_t value_stride, int64_t P, int64_t hd,
                                                           float scale, float* w, float* out) {
  const int64_t chunks = hd / 16;
  __m512 qv[kMaxChunks], acc[kMaxChunks];
  for (int64_t c = 0; c < chunks; ++c) qv[c] = _mm512_loadu_ps(q + 16 * c);
  float top = -INFINITY;
  for (int64_t p = 0; p < P; ++p) {
    const T* key = keys + p * key_stride;
    __m512 s = _mm512_mul_ps(qv[0], load16(key));
    for (int64_t c = 1; c < chunks; ++c) s = _mm512_fmadd_ps(qv[c], load16(key + 16 * c), s);
    w[p] = _mm512_reduce_add_ps(s) * scale;
    top = std::max(top, w[p]);
  }
  float total = 0.f;
  for (int64_t p = 0; p < P; ++p) total += (w[p] = std::exp(w[p] - top));
  for (int64_t c = 0; c < chunks; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t p = 0; p < P; ++p) {
    const T* value = values + p * value_stride;
    const __m512 wp = _mm512_set1_ps(w[p] / total);
    for (int64_t c = 0; c < chunks; ++c) acc[c] = _mm512_fmadd_ps(wp, load16(value + 16 * c), acc[c]);
  }
  for (int64_t c = 0; c < chunks; ++c) _mm512_storeu_ps(out + 16 * c, acc[c]);
}

bool use_avx512(int64_t hd) {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has && hd % 16 == 0 && hd <= 16 * kMaxChunks;
}

template <typename T>
void attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, float scale, torch::Tensor& out) {
  const int64_t B = q.size(0), H = q.size(1), P = k.size(2), hd = q.size(3);
  const T* qp = q.data_ptr<T>();
  const T* kp = k.data_ptr<T>();
  const T* vp = v.data_ptr<T>();
  T* op = out.data_ptr<T>();
  const bool wide = use_avx512(hd);
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> qf(hd), acc(hd), w(P);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const T* qr = qp + b * q.stride(0) + h * q.stride(1);
      for (int64_t d = 0; d < hd; ++d) qf[d] = static_cast<float>(qr[d]);
      const T* kr = kp + b * k.stride(0) + h * k.stride(1);
      const T* vr = vp + b * v.stride(0) + h * v.stride(1);
      if (wide)
        attend_one_avx512(qf.data(), kr, k.stride(2), vr, v.stride(2), P, hd, scale, w.data(), acc.data());
      else
        attend_one(qf.data(), kr, k.stride(2), vr, v.stride(2), P, hd, scale, w.data(), acc.data());
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
