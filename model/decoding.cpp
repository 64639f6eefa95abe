#include "model/decoding.h"

#include <torch/torch.h>

#include <algorithm>

#include "common/error.h"
#include "model/beam_search.h"
#include "model/token_search.h"

namespace clipcap {

namespace {

// Puts the model in eval mode for the duration of a generation and restores training mode after
// (validation during training calls generate()).
class EvalModeGuard {
 public:
  explicit EvalModeGuard(torch::nn::Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalModeGuard() {
    if (was_training_) m_.train();
  }

 private:
  torch::nn::Module& m_;
  bool was_training_;
};

template <typename S>
std::unique_ptr<SearchStrategy> make(const DecodeOptions& o) {
  return std::make_unique<S>(o);
}

}  // namespace

const std::vector<StrategyEntry>& search_strategies() {
  static const std::vector<StrategyEntry> all = {
      {"greedy", "the most likely token at each step", make<GreedySearch>},
      {"sample", "a token drawn after temperature, top-k and top-p", make<SampleSearch>},
      {"beam", "beam search with --beam-size hypotheses and --length-penalty", make<BeamSearch>},
  };
  return all;
}

std::unique_ptr<SearchStrategy> make_search_strategy(const DecodeOptions& opts) {
  for (const auto& s : search_strategies())
    if (s.name == opts.strategy) return s.make(opts);
  throw Error("decoding options: unknown strategy '" + opts.strategy + "'");
}

std::vector<std::vector<Generated>> SearchStrategy::search_candidates(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds,
                                                                    int64_t eos_id, int64_t n) {
  if (n != 1) throw Error("decoding: this strategy writes one candidate per image, " + std::to_string(n) + " asked");
  std::vector<std::vector<Generated>> out;
  for (auto& g : search(gpt2, prefix_embeds, eos_id)) out.push_back({std::move(g)});
  return out;
}

namespace {

// The checks and settings every generation shares; returns the prefix in the model's dtype.
torch::Tensor checked_prefix(GPT2& gpt2, const torch::Tensor& prefix_embeds, const DecodeOptions& opts) {
  opts.validate();
  if (prefix_embeds.dim() != 3 || prefix_embeds.size(2) != gpt2->config.n_embd)
    throw Error("generate: prefix embeddings must be (B, P, " + std::to_string(gpt2->config.n_embd) + "), got " +
                shape_string(prefix_embeds.sizes().vec()));
  const int64_t P = prefix_embeds.size(1);
  if (P + opts.max_len - 1 > gpt2->config.n_positions)
    throw Error("decoding options: a prefix of " + std::to_string(P) + " embeddings plus max_len " +
                std::to_string(opts.max_len) + " exceeds GPT-2's n_positions " +
                std::to_string(gpt2->config.n_positions) + "; lower --max-len");
  return prefix_embeds.to(gpt2->wte->weight.options());
}

void check_row_seeds(const std::vector<uint64_t>& row_seeds, int64_t rows) {
  if (!row_seeds.empty() && static_cast<int64_t>(row_seeds.size()) != rows)
    throw Error("generate: " + std::to_string(row_seeds.size()) + " row seeds for " + std::to_string(rows) + " rows");
}

}  // namespace

std::vector<Generated> generate_scored(GPT2& gpt2, const torch::Tensor& prefix_embeds, const DecodeOptions& opts,
                                       int64_t eos_id, GenerationObserver* observer,
                                       const std::vector<uint64_t>& row_seeds) {
  const torch::Tensor prefix = checked_prefix(gpt2, prefix_embeds, opts);
  check_row_seeds(row_seeds, prefix.size(0));
  if (prefix.size(0) == 0) return {};
  torch::NoGradGuard no_grad;
  EvalModeGuard eval(*gpt2);
  auto strategy = make_search_strategy(opts);
  strategy->observer = observer;
  strategy->row_seeds = row_seeds;
  std::vector<Generated> out = strategy->search(*gpt2, prefix, eos_id);
  if (observer && !strategy->reports_rows())
    for (size_t b = 0; b < out.size(); ++b) observer->finished(static_cast<int64_t>(b), out[b]);
  return out;
}

std::vector<std::vector<Generated>> generate_candidates(GPT2& gpt2, const torch::Tensor& prefix_embeds,
                                                        const DecodeOptions& opts, int64_t eos_id, int64_t n,
                                                        const std::vector<uint64_t>& row_seeds) {
  if (n < 1) throw Error("decoding: candidates per image must be >= 1, got " + std::to_string(n));
  DecodeOptions o = opts;
  if (n > 1 && o.strategy != "sample") {  // greedy has one answer: its candidates are a beam's
    o.strategy = "beam";
    o.beam_size = std::max(o.beam_size, static_cast<int>(n));
  }
  const torch::Tensor prefix = checked_prefix(gpt2, prefix_embeds, o);
  check_row_seeds(row_seeds, prefix.size(0));
  if (prefix.size(0) == 0) return {};
  torch::NoGradGuard no_grad;
  EvalModeGuard eval(*gpt2);
  auto strategy = make_search_strategy(o);
  strategy->row_seeds = row_seeds;
  return strategy->search_candidates(*gpt2, prefix, eos_id, n);
}

std::vector<std::vector<int64_t>> generate(GPT2& gpt2, const torch::Tensor& prefix_embeds, const DecodeOptions& opts,
                                           int64_t eos_id) {
  std::vector<std::vector<int64_t>> tokens;
  for (auto& g : generate_scored(gpt2, prefix_embeds, opts, eos_id)) tokens.push_back(std::move(g.tokens));
  return tokens;
}

double sequence_logprob(GPT2& gpt2, const torch::Tensor& prefix_embeds, const std::vector<int64_t>& tokens) {
  if (tokens.empty()) return 0.0;
  torch::NoGradGuard no_grad;
  EvalModeGuard eval(*gpt2);
  auto prefix = prefix_embeds.to(gpt2->wte->weight.options());  // (1, P, D)
  const int64_t P = prefix.size(1), T = static_cast<int64_t>(tokens.size());
  auto ids = torch::tensor(tokens, torch::kInt64).to(prefix.device()).unsqueeze(0);  // (1, T)
  auto x = torch::cat({prefix, gpt2->embed(ids.slice(1, 0, T - 1))}, 1);            // (1, P+T-1, D)
  auto h = gpt2->forward(x).slice(1, P - 1, P + T - 1);                              // (1, T, D)
  auto logp = torch::log_softmax(gpt2->logits(h).to(torch::kFloat64), -1);           // (1, T, V)
  return logp.gather(2, ids.unsqueeze(2)).sum().item<double>();
}

}  // namespace clipcap
