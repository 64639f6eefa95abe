#include "bench/hardware_probes.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
// gcc 12 warns on _mm512_reduce_add_epi64's deliberately undefined upper half.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "model/kernels/inference_matmul.h"

namespace clipcap::bench {

namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double best_seconds(int reps, F&& f) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

// Sums the 64-byte lines [b, e) of p: four independent 512-bit sums, so memory is the limit.
__attribute__((target("avx512f"))) int64_t sum_lines_avx512(const char* p, int64_t b, int64_t e) {
  __m512i a[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  int64_t i = b;
  for (; i + 4 <= e; i += 4)
    for (int j = 0; j < 4; ++j) a[j] = _mm512_add_epi64(a[j], _mm512_load_si512(p + 64 * (i + j)));
  for (; i < e; ++i) a[0] = _mm512_add_epi64(a[0], _mm512_load_si512(p + 64 * i));
  return _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a[0], a[1]), _mm512_add_epi64(a[2], a[3])));
}

int64_t sum_lines_portable(const char* p, int64_t b, int64_t e) {
  const int64_t* q = reinterpret_cast<const int64_t*>(p);
  int64_t acc[8] = {};
  for (int64_t i = 8 * b; i < 8 * e; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += q[i + j];
  int64_t sum = 0;
  for (int64_t v : acc) sum += v;
  return sum;
}

}  // namespace

double read_bandwidth_gb_per_s(int reps) {
  const int64_t bytes = int64_t(1) << 30, lines = bytes / 64;
  torch::Tensor buf = torch::ones({bytes / 8}, torch::kLong);  // touched, so the pages exist
  const char* p = static_cast<const char*>(buf.data_ptr());
  TORCH_CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0, "read_bandwidth_gb_per_s: buffer not 64-byte aligned");
  const bool avx512 = __builtin_cpu_supports("avx512f");
  volatile int64_t sink = 0;
  const double s = best_seconds(reps, [&] {
    std::atomic<int64_t> total{0};
    at::parallel_for(0, lines, lines / 64, [&](int64_t b, int64_t e) {
      total += avx512 ? sum_lines_avx512(p, b, e) : sum_lines_portable(p, b, e);
    });
    sink = total.load();
  });
  (void)sink;
  return static_cast<double>(bytes) / s / 1e9;
}

double gemm_peak_gflop_per_s(torch::ScalarType dtype, int reps) {
  torch::NoGradGuard no_grad;
  const int64_t n = 2048;
  const torch::Tensor a = torch::randn({n, n}).to(dtype), w = torch::randn({n, n}).to(dtype);
  inference_linear(a, w, torch::Tensor(), WeightLayout::out_in);  // primitive made, memory touched
  const double s = best_seconds(reps, [&] { inference_linear(a, w, torch::Tensor(), WeightLayout::out_in); });
  return 2.0 * n * n * n / s / 1e9;
}

}  // namespace clipcap::bench
