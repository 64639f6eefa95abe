// Edits of one decoding step's scores before a token is chosen, in HF's order: constraints
// (min_len, no-repeat-ngram), then, when sampling, the warpers (temperature, top-k, top-p).
//
//   clipcap::LogitsProcessors p = clipcap::make_logits_processors(opts);
//   for (const auto& proc : p) proc->apply(scores, state);      // scores (N, V) float32, in place
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "model/decode_options.h"

namespace clipcap {

// One step's view for the processors: row i of the scores belongs to the sequence rows[i] whose
// written tokens are tokens[rows[i]].
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
// The processors the options ask for; the warpers only for the sample strategy.
LogitsProcessors make_logits_processors(const DecodeOptions& opts);

}  // namespace clipcap
