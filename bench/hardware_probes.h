// What this machine can do at most, measured in the benchmark's own process, so every result can
// be stated as a share of its bound (bench/README.md, "Captioning speed"):
//
//   double gbps = clipcap::bench::read_bandwidth_gb_per_s();          // streaming reads, all threads
//   double gflops = clipcap::bench::gemm_peak_gflop_per_s(torch::kBFloat16);
//
// Batch-1 decoding reads every weight once per token, so its bound is bandwidth / weight bytes;
// a batch of 16 rows does 16 times the arithmetic on the same bytes, so its bound is the GEMM peak.
#pragma once

#include <torch/types.h>

namespace clipcap::bench {

// Best of `reps` passes summing a 1 GiB buffer (far beyond the caches) with libtorch's threads.
double read_bandwidth_gb_per_s(int reps = 5);

// Best of `reps` 2048 x 2048 x 2048 products through the model's own matmul path (oneDNN).
double gemm_peak_gflop_per_s(torch::ScalarType dtype, int reps = 5);

}  // namespace clipcap::bench
