#include "model/logits_processors.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>

#include "model/search_step.h"

namespace clipcap {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}  // namespace

void MinLengthProcessor::apply(torch::Tensor& scores, const StepState& state) const {
  if (state.eos_id < 0 || state.eos_id >= scores.size(1)) return;
  std::vector<int64_t> ban;
  for (size_t i = 0; i < state.rows.size(); ++i)
    if (static_cast<int>((*state.tokens)[state.rows[i]].size()) < min_len_) ban.push_back(static_cast<int64_t>(i));
  if (ban.empty()) return;
  scores.index_put_({index_tensor(ban, scores.device()), state.eos_id}, kNegInf);
}

void NoRepeatNGramProcessor::apply(torch::Tensor& scores, const StepState& state) const {
  if (n_ <= 0) return;
  const size_t n = static_cast<size_t>(n_);
  std::vector<int64_t> ban_rows, ban_tokens;
  for (size_t i = 0; i < state.rows.size(); ++i) {
    const auto& seq = (*state.tokens)[state.rows[i]];
    if (seq.size() + 1 < n) continue;
    // The next token would complete the n-gram (last n-1 tokens, next): ban every token that
    // followed the same n-1 tokens before.
    const size_t start = seq.size() - (n - 1);
    for (size_t j = 0; j + n <= seq.size(); ++j) {
      if (std::equal(seq.begin() + j, seq.begin() + j + n - 1, seq.begin() + start)) {
        ban_rows.push_back(static_cast<int64_t>(i));
        ban_tokens.push_back(seq[j + n - 1]);
      }
    }
  }
  if (ban_rows.empty()) return;
  scores.index_put_({index_tensor(ban_rows, scores.device()), index_tensor(ban_tokens, scores.device())}, kNegInf);
}

void TemperatureProcessor::apply(torch::Tensor& scores, const StepState&) const {
  if (t_ != 1.0f) scores.div_(t_);
}

void TopKProcessor::apply(torch::Tensor& scores, const StepState&) const {
  if (k_ <= 0 || k_ >= scores.size(1)) return;
  auto kth = std::get<0>(scores.topk(k_, 1)).select(1, k_ - 1).unsqueeze(1);  // (N, 1)
  scores.masked_fill_(scores < kth, kNegInf);
}

void TopPProcessor::apply(torch::Tensor& scores, const StepState&) const {
  if (p_ >= 1.0f) return;
  auto [sorted, order] = scores.sort(1, /*descending=*/true);  // (N, V)
  auto probs = torch::softmax(sorted, 1);
  // A token goes when the tokens ranked above it already hold p of the mass; the top one stays.
  auto remove_sorted = (probs.cumsum(1) - probs) >= p_;  // (N, V) bool
  auto remove = torch::zeros_like(remove_sorted).scatter_(1, order, remove_sorted);
  scores.masked_fill_(remove, kNegInf);
}

LogitsProcessors make_logits_processors(const DecodeOptions& opts) {
  LogitsProcessors p;
  if (opts.min_len > 0) p.push_back(std::make_unique<MinLengthProcessor>(opts.min_len));
  if (opts.no_repeat_ngram_size > 0) p.push_back(std::make_unique<NoRepeatNGramProcessor>(opts.no_repeat_ngram_size));
  if (opts.strategy == "sample") {
    if (opts.temperature != 1.0f) p.push_back(std::make_unique<TemperatureProcessor>(opts.temperature));
    if (opts.top_k > 0) p.push_back(std::make_unique<TopKProcessor>(opts.top_k));
    if (opts.top_p < 1.0f) p.push_back(std::make_unique<TopPProcessor>(opts.top_p));
  }
  return p;
}

}  // namespace clipcap
