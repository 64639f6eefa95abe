// The greedy pick: each row's first maximum, like libtorch's argmax(1) (a NaN counts as the
// maximum), over (N, V) f32 scores, rows in parallel and 16 values at a time.
//
//   std::vector<int64_t> next = clipcap::row_argmax(scores);   // (N) column indices
//
// libtorch 1.13's argmax ran on one thread: 0.65 ms of a ~16 ms bf16 decoding step for 16 rows
// of GPT-2's 50,257 words (bench/README.md, "Where a packed bf16 batch-16 step goes").
#pragma once

#include <torch/types.h>

#include <vector>

namespace clipcap {

// scores: (N, V); any dtype, device or layout (what is not contiguous f32 on the CPU takes
// libtorch's argmax).
std::vector<int64_t> row_argmax(const torch::Tensor& scores);

}  // namespace clipcap
