#include "train/caption_objective.h"

#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "common/error.h"
#include "model/captioner.h"
#include "train/caption_batches.h"

namespace clipcap {

namespace {

// Positions GPT-2 runs on for a caption of L target tokens: the prefix and the first L - 1 tokens.
// A batch is padded to its longest caption, but running GPT-2 on the padding is wasted work (a
// third of the positions for Flickr-like length spreads), so rows are sorted by length and split
// into runs that GPT-2 reads one after the other, each padded only to its own longest caption.
// GPT-2 has no interaction between rows, so the loss and the gradients are those of the whole
// padded batch (up to float rounding); dropout draws its masks per run.
// Each extra run costs a fixed amount (more, smaller matrix products): kRunOverhead positions,
// measured on GPT-2 small (bench/README.md, training speed); a batch of equal lengths is one run.
constexpr int64_t kRunOverhead = 64;

// Row groups, longest captions first, that minimise sum(rows * padded positions) + runs * overhead
// (dynamic programming over the rows sorted by length; B is a batch, so B^2 is nothing).
std::vector<std::vector<int64_t>> length_runs(const std::vector<int64_t>& lengths, int64_t prefix_len) {
  std::vector<int64_t> order;
  for (int64_t b = 0; b < static_cast<int64_t>(lengths.size()); ++b)
    if (lengths[b] > 0) order.push_back(b);  // a row without targets adds nothing to the loss
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
  const size_t n = order.size();
  std::vector<int64_t> best(n + 1, 0), cut(n + 1, 0);  // best[j]: cost of rows order[0..j)
  for (size_t j = 1; j <= n; ++j) {
    best[j] = -1;
    for (size_t i = 0; i < j; ++i) {  // a run of order[i..j), padded to order[i]'s length
      const int64_t cost = best[i] + static_cast<int64_t>(j - i) * (prefix_len + lengths[order[i]] - 1) + kRunOverhead;
      if (best[j] < 0 || cost < best[j]) best[j] = cost, cut[j] = static_cast<int64_t>(i);
    }
  }
  std::vector<std::vector<int64_t>> runs;
  for (size_t j = n; j > 0; j = static_cast<size_t>(cut[j]))
    runs.emplace(runs.begin(), order.begin() + cut[j], order.begin() + static_cast<int64_t>(j));
  return runs;
}

// GPT-2's final hidden states at the positions that predict a real (non-pad) target, with those
// targets: the last prefix slot predicts the first caption token, every caption token the next.
struct TargetStates {
  torch::Tensor hidden;   // (N, D) in the model's dtype
  torch::Tensor targets;  // (N) int64
  torch::Tensor index;    // (N) int64: each target's flat position in the batch's (B, T)
};

TargetStates target_states(Captioner& captioner, const CaptionBatch& batch) {
  GPT2& gpt2 = captioner.gpt2();
  const int64_t B = batch.tokens.size(0), T = batch.tokens.size(1);
  torch::Tensor prefix = captioner.prefix(batch.embeds);  // (B, E, D)
  const int64_t E = prefix.size(1);
  if (E + T - 1 > gpt2->config.n_positions)
    throw Error("training: prefix (" + std::to_string(E) + ") + caption (" + std::to_string(T) +
                " tokens) exceed GPT-2's n_positions " + std::to_string(gpt2->config.n_positions) + "; lower max_len");
  const torch::Device device = captioner.device();
  torch::Tensor tokens = batch.tokens.to(device);
  torch::Tensor inputs =
      T > 1 ? torch::cat({prefix, gpt2->embed(tokens.slice(1, 0, T - 1)).to(prefix.scalar_type())}, 1)  // (B, E+T-1, D)
            : prefix;

  // Each row's length = its last real target + 1 (collate pads at the end only).
  torch::Tensor targets_cpu = batch.targets.to(torch::kCPU).contiguous();  // (B, T)
  auto tgt = targets_cpu.accessor<int64_t, 2>();
  std::vector<int64_t> lengths(B, 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = T; t > 0 && !lengths[b]; --t)
      if (tgt[b][t - 1] != -100) lengths[b] = t;

  torch::Tensor targets = batch.targets.to(device);  // (B, T)
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  std::vector<torch::Tensor> hidden, kept, index;
  for (const auto& rows : length_runs(lengths, E)) {
    const int64_t L = lengths[rows.front()];  // the run's longest caption
    const bool whole = static_cast<int64_t>(rows.size()) == B && L == T;  // one run: no copies, batch order
    torch::Tensor r = whole ? torch::arange(B, long_opts) : torch::tensor(rows, torch::kLong).to(device);  // (n)
    torch::Tensor x = whole ? inputs : inputs.index_select(0, r).slice(1, 0, E + L - 1);  // (n, E+L-1, D)
    torch::Tensor h = gpt2->forward(x).slice(1, E - 1);                                 // (n, L, D)
    torch::Tensor t = whole ? targets : targets.index_select(0, r).slice(1, 0, L);      // (n, L)
    torch::Tensor pos = (r.unsqueeze(1) * T + torch::arange(L, long_opts)).reshape({-1});  // (n*L) flat (b, t)
    torch::Tensor real = t.reshape({-1}).ne(-100).nonzero().squeeze(1);                   // (n_real)
    hidden.push_back(h.reshape({-1, h.size(2)}).index_select(0, real));
    kept.push_back(t.reshape({-1}).index_select(0, real));
    index.push_back(pos.index_select(0, real));
  }
  if (hidden.empty()) throw Error("training: a batch without any target token");
  return {torch::cat(hidden), torch::cat(kept), torch::cat(index)};
}

}  // namespace

torch::Tensor caption_token_losses(Captioner& captioner, const CaptionBatch& batch) {
  TargetStates s = target_states(captioner, batch);
  torch::Tensor logits = captioner.gpt2()->logits(s.hidden).to(torch::kFloat32);  // (N, V): real targets only
  torch::Tensor losses = torch::nn::functional::cross_entropy(
      logits, s.targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));  // (N)
  return torch::zeros({batch.targets.numel()}, losses.options()).index_copy(0, s.index, losses).view(batch.targets.sizes());  // (B, T)
}

torch::Tensor caption_loss(Captioner& captioner, const CaptionBatch& batch) {
  TargetStates s = target_states(captioner, batch);
  torch::Tensor logits = captioner.gpt2()->logits(s.hidden).to(torch::kFloat32);  // (N, V): real targets only
  return torch::nn::functional::cross_entropy(logits, s.targets);                  // mean over the real targets
}

}  // namespace clipcap
