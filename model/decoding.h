// Text generation from prefix embeddings with GPT-2: greedy, sampling and beam search, batched
// over images with the KV cache.
//
//   clipcap::DecodeOptions opts;           // greedy, max_len 40
//   opts.beam_size = 3;
//   auto ids = clipcap::generate(gpt2, prefix, opts, tokenizer.eos_id());   // prefix: (B, P, D)
//   // ids[b]: the tokens written for image b, without the EOS
//
// Structure (as CTranslate2): a search strategy (GreedySearch: argmax or sampling; BeamSearch)
// asks a chain of logits processors (min_len, no-repeat-ngram, then for sampling temperature,
// top-k, top-p) to edit each step's scores, then picks tokens. The prefix goes through GPT-2 once;
// every later step feeds one token per unfinished row. Rows that finish are dropped from the
// batch (one KV-cache gather, only on steps where a row ends) rather than kept and ignored:
// measured with GPT-2 small shapes (12 layers, 768 wide, B=16, rows ending evenly between steps
// 8 and 30, 2 threads), dropping took 16-24 s against 18-31 s for keeping (~20% less, on a
// shared, noisy machine); keeping would do ~60% more row-steps for nothing.
//
// Sampling draws every row from its own generator seeded with `seed`, so an image's caption does
// not depend on which other images share its batch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include <nlohmann/json_fwd.hpp>

#include "model/gpt2.h"

namespace clipcap {

struct DecodeOptions {
  int max_len = 40;               // most tokens written per caption (the EOS counts as one)
  int min_len = 0;                // EOS is banned until this many tokens are written
  int beam_size = 1;              // 1 = greedy / sampling; > 1 = beam search
  float length_penalty = 1.0f;    // beam: score = sum logprob / length^length_penalty (length incl. EOS)
  bool do_sample = false;         // sample instead of argmax (greedy search only)
  float temperature = 1.0f;       // sampling: logits / temperature
  int top_k = 0;                  // sampling: keep the k most likely tokens (0 = all)
  float top_p = 1.0f;             // sampling: keep the smallest set with probability >= top_p
  uint64_t seed = 0;              // sampling: the same seed gives the same captions
  int no_repeat_ngram_size = 0;   // ban tokens that would repeat an n-gram already written (0 = off)

  void validate() const;  // Error naming the option when a value is out of range

  // The "decoding" section of a model's config.json: every field by name; missing keys keep
  // the values of `defaults`.
  nlohmann::json to_json() const;
  static DecodeOptions from_json(const nlohmann::json& j, const std::string& where, const DecodeOptions& defaults);
  static DecodeOptions from_json(const nlohmann::json& j, const std::string& where);
};

// One step's view for the logits processors: scores (N, V) in float32, row i belongs to the
// sequence rows[i] whose written tokens are tokens[rows[i]].
struct StepState {
  const std::vector<std::vector<int64_t>>* tokens = nullptr;
  std::vector<int64_t> rows;
  int64_t eos_id = -1;
};

class LogitsProcessor {
 public:
  virtual ~LogitsProcessor() = default;
  virtual void apply(torch::Tensor& scores, const StepState& state) const = 0;  // edits scores (N, V) in place
};

class MinLengthProcessor : public LogitsProcessor {
 public:
  explicit MinLengthProcessor(int min_len) : min_len_(min_len) {}
  void apply(torch::Tensor& scores, const StepState& state) const override;
 private:
  int min_len_;
};

class NoRepeatNGramProcessor : public LogitsProcessor {
 public:
  explicit NoRepeatNGramProcessor(int n) : n_(n) {}
  void apply(torch::Tensor& scores, const StepState& state) const override;
 private:
  int n_;
};

class TemperatureProcessor : public LogitsProcessor {
 public:
  explicit TemperatureProcessor(float t) : t_(t) {}
  void apply(torch::Tensor& scores, const StepState& state) const override;
 private:
  float t_;
};

class TopKProcessor : public LogitsProcessor {
 public:
  explicit TopKProcessor(int k) : k_(k) {}
  void apply(torch::Tensor& scores, const StepState& state) const override;
 private:
  int k_;
};

class TopPProcessor : public LogitsProcessor {
 public:
  explicit TopPProcessor(float p) : p_(p) {}
  void apply(torch::Tensor& scores, const StepState& state) const override;
 private:
  float p_;
};

using LogitsProcessors = std::vector<std::unique_ptr<LogitsProcessor>>;
// The processors the options ask for, in HF order: constraints (min_len, no-repeat-ngram), then,
// when sampling, the warpers (temperature, top-k, top-p).
LogitsProcessors make_logits_processors(const DecodeOptions& opts);

class SearchStrategy {
 public:
  virtual ~SearchStrategy() = default;
  virtual std::vector<std::vector<int64_t>> search(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds,
                                                   int64_t eos_id) = 0;
};

class GreedySearch : public SearchStrategy {  // argmax, or sampling when opts.do_sample
 public:
  explicit GreedySearch(const DecodeOptions& opts);
  std::vector<std::vector<int64_t>> search(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds,
                                           int64_t eos_id) override;
 private:
  DecodeOptions opts_;
  LogitsProcessors processors_;
};

class BeamSearch : public SearchStrategy {
 public:
  explicit BeamSearch(const DecodeOptions& opts);
  std::vector<std::vector<int64_t>> search(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds,
                                           int64_t eos_id) override;
 private:
  DecodeOptions opts_;
  LogitsProcessors processors_;
};

std::unique_ptr<SearchStrategy> make_search_strategy(const DecodeOptions& opts);

// prefix_embeds: (B, P, D) given to GPT-2 as inputs_embeds (GPT-2 adds wpe). eos_id < 0: never
// stop early. Returns B token lists without the EOS. Runs under NoGradGuard, model in eval mode.
std::vector<std::vector<int64_t>> generate(GPT2& gpt2, const torch::Tensor& prefix_embeds, const DecodeOptions& opts,
                                           int64_t eos_id);

// Sum of log-probabilities GPT-2 gives `tokens` after `prefix_embeds` (1, P, D), one full forward:
// what beam search maximises (before the length penalty). For tests and diagnostics.
double sequence_logprob(GPT2& gpt2, const torch::Tensor& prefix_embeds, const std::vector<int64_t>& tokens);

}  // namespace clipcap
