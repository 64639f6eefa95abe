// The GPT-2 calls every search strategy makes: the prefix pass that fills the KV cache, and one
// token per row after it. Shared by model/token_search.cpp and model/beam_search.cpp.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "model/gpt2.h"

namespace clipcap {

torch::Tensor index_tensor(const std::vector<int64_t>& v, const torch::Device& device);  // (n) int64

// The logits after the prefix (B, P, D): (B, V) float32; fills `cache`.
torch::Tensor prefix_logits(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds, KVCache& cache);

// The logits after feeding next_tokens[i] to row i of the cache: (N, V) float32.
torch::Tensor step_logits(GPT2Impl& gpt2, const std::vector<int64_t>& next_tokens, KVCache& cache,
                          const torch::Device& device);

}  // namespace clipcap
