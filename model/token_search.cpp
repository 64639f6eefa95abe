#include "model/token_search.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "model/kernels/inference_norm.h"
#include "model/kernels/row_argmax.h"
#include "model/search_step.h"

namespace clipcap {

TokenSearch::TokenSearch(const DecodeOptions& opts) : opts_(opts), processors_(make_logits_processors(opts)) {}

std::vector<Generated> TokenSearch::search(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds, int64_t eos_id) {
  const int64_t B = prefix_embeds.size(0);
  const auto device = prefix_embeds.device();
  std::vector<Generated> out(B);
  std::vector<std::vector<int64_t>> tokens(B);
  StepState state;
  state.tokens = &tokens;
  state.eos_id = eos_id;
  for (int64_t b = 0; b < B; ++b) state.rows.push_back(b);  // active rows, in batch order
  start(B);

  KVCache cache;
  auto logits = prefix_logits(gpt2, prefix_embeds, cache);  // (B, V)
  for (int step = 0; step < opts_.max_len; ++step) {
    // Each pick's log-probability is the model's own: taken before the processors edit the logits.
    const torch::Tensor log_probs = inference_log_softmax(logits);  // (N, V) f32
    torch::Tensor scores = logits.contiguous();
    for (const auto& p : processors_) p->apply(scores, state);
    const std::vector<int64_t> next = pick(scores, state.rows);
    auto logp = log_probs.gather(1, index_tensor(next, device).unsqueeze(1)).squeeze(1).to(torch::kFloat64).cpu();  // (N)
    auto lp = logp.accessor<double, 1>();

    std::vector<int64_t> keep, keep_rows, keep_tokens;
    for (size_t i = 0; i < next.size(); ++i) {
      Generated& g = out[state.rows[i]];
      g.logprob += lp[static_cast<int64_t>(i)];
      ++g.scored_tokens;
      if (next[i] == eos_id) {
        if (observer) observer->finished(state.rows[i], {tokens[state.rows[i]], g.logprob, g.scored_tokens});
        continue;
      }
      tokens[state.rows[i]].push_back(next[i]);
      if (observer) observer->token(state.rows[i], tokens[state.rows[i]]);
      keep.push_back(static_cast<int64_t>(i));
      keep_rows.push_back(state.rows[i]);
      keep_tokens.push_back(next[i]);
    }
    if (keep.empty() || step + 1 == opts_.max_len) {
      if (observer)  // the rows max_len ended
        for (int64_t r : keep_rows) observer->finished(r, {tokens[r], out[r].logprob, out[r].scored_tokens});
      break;
    }
    if (keep.size() != next.size()) cache.reorder(index_tensor(keep, device));
    state.rows = std::move(keep_rows);
    logits = step_logits(gpt2, keep_tokens, cache, device);
  }
  for (int64_t b = 0; b < B; ++b) out[b].tokens = std::move(tokens[b]);
  return out;
}

std::vector<int64_t> GreedySearch::pick(const torch::Tensor& scores, const std::vector<int64_t>&) {
  return row_argmax(scores);  // (N)
}

void SampleSearch::start(int64_t batch) {
  generators_.clear();
  for (int64_t b = 0; b < batch; ++b) {
    const uint64_t seed = row_seeds.empty() ? opts_.seed : row_seeds.at(static_cast<size_t>(b / copies_));
    generators_.push_back(at::make_generator<at::CPUGeneratorImpl>(seed + static_cast<uint64_t>(b % copies_)));
  }
}

std::vector<std::vector<Generated>> SampleSearch::search_candidates(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds,
                                                                    int64_t eos_id, int64_t n) {
  copies_ = n;
  std::vector<Generated> draws;
  try {
    draws = search(gpt2, prefix_embeds.repeat_interleave(n, 0), eos_id);
  } catch (...) {
    copies_ = 1;
    throw;
  }
  copies_ = 1;
  std::vector<std::vector<Generated>> out(static_cast<size_t>(prefix_embeds.size(0)));
  for (size_t i = 0; i < draws.size(); ++i) out[i / static_cast<size_t>(n)].push_back(std::move(draws[i]));
  return out;
}

std::vector<int64_t> SampleSearch::pick(const torch::Tensor& scores, const std::vector<int64_t>& rows) {
  auto probs = torch::softmax(scores, 1).cpu();  // (N, V)
  std::vector<int64_t> next(rows.size());
  for (size_t i = 0; i < next.size(); ++i)
    next[i] = torch::multinomial(probs[static_cast<int64_t>(i)], 1, false, generators_[rows[i]]).item<int64_t>();
  return next;
}

}  // namespace clipcap
