// The strategies that write one token per unfinished row and step: greedy (argmax) and sample.
// They share the loop (prefix pass, processors, rows leaving the batch at their EOS) and differ
// only in how a row's next token is picked from its processed scores.
#pragma once

#include <ATen/core/Generator.h>

#include "model/decoding.h"
#include "model/logits_processors.h"

namespace clipcap {

class TokenSearch : public SearchStrategy {
 public:
  explicit TokenSearch(const DecodeOptions& opts);
  std::vector<Generated> search(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds, int64_t eos_id) override;
  bool reports_rows() const override { return true; }

 protected:
  virtual void start(int64_t batch) {}
  // scores (N, V) processed; rows[i] is the batch row of score row i. Returns N token ids.
  virtual std::vector<int64_t> pick(const torch::Tensor& scores, const std::vector<int64_t>& rows) = 0;
  const DecodeOptions opts_;

 private:
  LogitsProcessors processors_;
};

class GreedySearch : public TokenSearch {
 public:
  using TokenSearch::TokenSearch;

 protected:
  std::vector<int64_t> pick(const torch::Tensor& scores, const std::vector<int64_t>& rows) override;
};

class SampleSearch : public TokenSearch {
 public:
  using TokenSearch::TokenSearch;
  // n draws per row: the rows repeated, candidate c drawn with seed + c (c = 0 is the plain sample).
  std::vector<std::vector<Generated>> search_candidates(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds,
                                                        int64_t eos_id, int64_t n) override;

 protected:
  void start(int64_t batch) override;
  std::vector<int64_t> pick(const torch::Tensor& scores, const std::vector<int64_t>& rows) override;

 private:
  std::vector<at::Generator> generators_;  // one per batch row: its image's seed + row % copies_
  int64_t copies_ = 1;                     // consecutive rows that are draws for one image
};

}  // namespace clipcap
