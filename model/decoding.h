// Text generation from prefix embeddings with GPT-2, batched over images with the KV cache.
//
//   clipcap::DecodeOptions opts;           // greedy, max_len 40 (model/decode_options.h)
//   opts.strategy = "beam";  opts.beam_size = 3;
//   auto ids = clipcap::generate(gpt2, prefix, opts, tokenizer.eos_id());   // prefix: (B, P, D)
//   // ids[b]: the tokens written for image b, without the EOS
//   auto scored = clipcap::generate_scored(gpt2, prefix, opts, eos);        // + log-probabilities
//
// Structure (as CTranslate2): a search strategy asks a chain of logits processors
// (model/logits_processors.h) to edit each step's scores, then picks tokens. The prefix goes through
// GPT-2 once; every later step feeds one token per unfinished row. Rows that finish leave the batch
// (one KV-cache gather, only on steps where a row ends) rather than being kept and ignored, which
// would do ~60% more row-steps for nothing (bench/README.md, "Measurements behind code decisions").
//
// The strategies, by the name DecodeOptions::strategy gives (search_strategies()):
//   greedy  the most likely token (model/token_search.h)
//   sample  drawn from the processed distribution; every row from its own generator seeded with
//           `seed`, so an image's caption does not depend on the other images of its batch
//   beam    beam search (model/beam_search.h)
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/decode_options.h"
#include "model/gpt2.h"

namespace clipcap {

// One generated sequence and how likely GPT-2 found it.
struct Generated {
  std::vector<int64_t> tokens;  // without the EOS
  double logprob = 0;           // sum of log p(token) over tokens, and the EOS when one was written
  int64_t scored_tokens = 0;    // how many tokens that sum covers (tokens.size() + 1 with an EOS)
};

// Told how generation goes, row by row, while it runs (the caption server streams tokens and
// answers a request as soon as its row ends, not when the whole batch has). Called on the
// generating thread.
class GenerationObserver {
 public:
  virtual ~GenerationObserver() = default;
  virtual void token(int64_t row, const std::vector<int64_t>& tokens_so_far) {}
  virtual void finished(int64_t row, const Generated& g) {}  // once per row; g.tokens without the EOS
};

class SearchStrategy {
 public:
  virtual ~SearchStrategy() = default;
  // Strategies that write one token per row and step tell the observer each token and each row's
  // end as they happen; the others (beam search) have generate_scored report every row at the end.
  virtual bool reports_rows() const { return false; }
  GenerationObserver* observer = nullptr;
  // Sampling: row b's seed instead of DecodeOptions::seed for every row, so rows that differ only
  // in their seed generate together (the caption server's batches). Empty: every row opts.seed.
  std::vector<uint64_t> row_seeds;
  // prefix_embeds (B, P, D) in the model's dtype, under NoGradGuard, model in eval mode.
  virtual std::vector<Generated> search(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds, int64_t eos_id) = 0;
  // n candidates per row (the reranker's input). Beam search: its n best hypotheses, best first
  // (n <= beam_size); sampling: n draws, candidate c from seed + c. Others: n must be 1.
  virtual std::vector<std::vector<Generated>> search_candidates(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds,
                                                                int64_t eos_id, int64_t n);
};

struct StrategyEntry {
  std::string name;  // DecodeOptions::strategy
  std::string help;
  std::function<std::unique_ptr<SearchStrategy>(const DecodeOptions&)> make;
};

// Every strategy, by name: the one place a new strategy is registered.
const std::vector<StrategyEntry>& search_strategies();
std::unique_ptr<SearchStrategy> make_search_strategy(const DecodeOptions& opts);  // Error: unknown name

// prefix_embeds: (B, P, D) given to GPT-2 as inputs_embeds (GPT-2 adds wpe). eos_id < 0: never
// stop early. Returns B sequences. Runs under NoGradGuard, model in eval mode.
// row_seeds: empty, or B seeds (SearchStrategy::row_seeds).
std::vector<Generated> generate_scored(GPT2& gpt2, const torch::Tensor& prefix_embeds, const DecodeOptions& opts,
                                       int64_t eos_id, GenerationObserver* observer = nullptr,
                                       const std::vector<uint64_t>& row_seeds = {});
// n candidates per image (B lists): with n = 1 exactly generate_scored's sequence; with n > 1 the
// n best of a beam search of width max(beam_size, n), or n samples when the strategy is sample
// (image b's candidate c drawn with seed row_seeds[b] + c, or opts.seed + c without row_seeds).
std::vector<std::vector<Generated>> generate_candidates(GPT2& gpt2, const torch::Tensor& prefix_embeds,
                                                        const DecodeOptions& opts, int64_t eos_id, int64_t n,
                                                        const std::vector<uint64_t>& row_seeds = {});
// The same, tokens only.
std::vector<std::vector<int64_t>> generate(GPT2& gpt2, const torch::Tensor& prefix_embeds, const DecodeOptions& opts,
                                           int64_t eos_id);

// Sum of log-probabilities GPT-2 gives `tokens` after `prefix_embeds` (1, P, D), one full forward:
// what beam search maximises (before the length penalty). For tests and diagnostics.
double sequence_logprob(GPT2& gpt2, const torch::Tensor& prefix_embeds, const std::vector<int64_t>& tokens);

}  // namespace clipcap
