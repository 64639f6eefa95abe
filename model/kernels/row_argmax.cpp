#include "model/kernels/row_argmax.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

// gcc 12 reports the AVX-512 intrinsics' deliberately undefined start values as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>

namespace clipcap {
namespace {

// The first maximum; the first NaN if there is one.
int64_t argmax_portable(const float* row, int64_t V) {
  int64_t best = 0;
  for (int64_t i = 0; i < V; ++i) {
    if (std::isnan(row[i])) return i;
    if (row[i] > row[best]) best = i;
  }
  return best;
}

// Lane j keeps the first maximum among columns j, j + 16, ...; the lanes' tie goes to the
// smallest column, which is the row's first maximum. A NaN anywhere: the portable scan finds it.
__attribute__((target("avx512f"))) int64_t argmax_avx512(const float* row, int64_t V) {
  if (V < 16) return argmax_portable(row, V);
  __m512 best = _mm512_loadu_ps(row);
  __m512i best_at = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i at = best_at;
  const __m512i step = _mm512_set1_epi32(16);
  __mmask16 nan = _mm512_cmp_ps_mask(best, best, _CMP_UNORD_Q);
  int64_t i = 16;
  for (; i + 16 <= V; i += 16) {
    at = _mm512_add_epi32(at, step);
    const __m512 v = _mm512_loadu_ps(row + i);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    const __mmask16 greater = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
    best = _mm512_mask_mov_ps(best, greater, v);
    best_at = _mm512_mask_mov_epi32(best_at, greater, at);
  }
  if (nan) return argmax_portable(row, V);
  alignas(64) float values[16];
  alignas(64) int32_t columns[16];
  _mm512_store_ps(values, best);
  _mm512_store_si512(columns, best_at);
  int64_t winner = columns[0];
  float top = values[0];
  for (int j = 1; j < 16; ++j)
    if (values[j] > top || (values[j] == top && columns[j] < winner)) top = values[j], winner = columns[j];
  for (; i < V; ++i) {  // the tail, after every earlier column
    if (std::isnan(row[i])) return i;
    if (row[i] > top) top = row[i], winner = i;
  }
  return winner;
}

}  // namespace

std::vector<int64_t> row_argmax(const torch::Tensor& scores) {
  const bool applies = scores.dim() == 2 && scores.device().is_cpu() && scores.scalar_type() == at::kFloat &&
                       scores.is_contiguous() && scores.size(1) > 0 && scores.size(1) < (int64_t{1} << 31);
  if (!applies) {
    const torch::Tensor best = scores.argmax(1).to(at::kLong).cpu().contiguous();  // (N)
    return std::vector<int64_t>(best.data_ptr<int64_t>(), best.data_ptr<int64_t>() + best.numel());
  }
  const int64_t N = scores.size(0), V = scores.size(1);
  const float* data = scores.data_ptr<float>();
  static const bool wide = __builtin_cpu_supports("avx512f");
  std::vector<int64_t> out(static_cast<size_t>(N));
  at::parallel_for(0, N, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      out[static_cast<size_t>(r)] = wide ? argmax_avx512(data + r * V, V) : argmax_portable(data + r * V, V);
  });
  return out;
}

}  // namespace clipcap
