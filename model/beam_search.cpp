#include "model/beam_search.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "model/kernels/inference_norm.h"
#include "model/search_step.h"

namespace clipcap {

BeamSearch::BeamSearch(const DecodeOptions& opts) : opts_(opts), processors_(make_logits_processors(opts)) {}

std::vector<Generated> BeamSearch::search(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds, int64_t eos_id) {
  std::vector<Generated> out;
  for (auto& n_best : search_candidates(gpt2, prefix_embeds, eos_id, 1)) out.push_back(std::move(n_best.front()));
  return out;
}

std::vector<std::vector<Generated>> BeamSearch::search_candidates(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds,
                                                                  int64_t eos_id, int64_t candidates) {
  const int64_t B = prefix_embeds.size(0), K = opts_.beam_size;
  if (candidates < 1 || candidates > K)
    throw Error("beam search: " + std::to_string(candidates) + " candidates asked of " + std::to_string(K) + " beams");
  const auto device = prefix_embeds.device();
  const double lp = opts_.length_penalty;
  auto normalised = [&](double sum, size_t length) {
    return sum / std::pow(static_cast<double>(std::max<size_t>(length, 1)), lp);
  };

  struct Hypothesis {
    double score;   // after the length penalty
    double sum;     // before it
    size_t length;  // tokens the sum covers
    std::vector<int64_t> tokens;
  };
  struct Finished {  // an image's n best finished hypotheses, best first (ties: the earlier first)
    size_t keep;
    std::vector<Hypothesis> hyps;
    void offer(double s, double raw, size_t len, const std::vector<int64_t>& t) {
      if (full() && s <= hyps.back().score) return;
      auto at = std::find_if(hyps.begin(), hyps.end(), [&](const Hypothesis& h) { return s > h.score; });
      hyps.insert(at, Hypothesis{s, raw, len, t});
      if (hyps.size() > keep) hyps.pop_back();
    }
    bool full() const { return hyps.size() == keep; }
  };
  std::vector<Finished> best(B, Finished{static_cast<size_t>(candidates), {}});

  // Running beams: images[n] is the n-th active image; its beams are rows n*K .. n*K+K-1.
  std::vector<int64_t> images;
  for (int64_t b = 0; b < B; ++b) images.push_back(b);
  std::vector<std::vector<int64_t>> beams(B * K);
  std::vector<double> beam_scores(B * K, 0.0);
  // All K beams start identical: only beam 0 may expand at the first step (HF does the same).
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 1; k < K; ++k) beam_scores[b * K + k] = -std::numeric_limits<double>::infinity();

  StepState state;
  state.eos_id = eos_id;

  KVCache cache;
  auto logits = prefix_logits(gpt2, prefix_embeds, cache);  // (B, V)
  {
    auto expand = torch::arange(B, torch::TensorOptions().dtype(torch::kInt64).device(device)).repeat_interleave(K);
    cache.reorder(expand);
    logits = logits.index_select(0, expand);  // (B*K, V)
  }
  const int64_t V = logits.size(1);

  for (int step = 0; step < opts_.max_len; ++step) {
    const int64_t N = static_cast<int64_t>(images.size());
    auto scores = inference_log_softmax(logits);  // (N*K, V)
    state.tokens = &beams;
    state.rows.resize(N * K);
    for (int64_t r = 0; r < N * K; ++r) state.rows[r] = r;
    for (const auto& p : processors_) p->apply(scores, state);

    auto running = torch::tensor(std::vector<float>(beam_scores.begin(), beam_scores.end())).to(device);
    auto cand = (scores + running.unsqueeze(1)).view({N, K * V});  // (N, K*V)
    auto [top_scores, top_ids] = cand.topk(std::min<int64_t>(2 * K, K * V), 1);
    top_scores = top_scores.to(torch::kFloat64).cpu();
    top_ids = top_ids.cpu();
    auto ts = top_scores.accessor<double, 2>();
    auto ti = top_ids.accessor<int64_t, 2>();

    const bool last_step = step + 1 == opts_.max_len;
    std::vector<int64_t> next_images, source_rows, next_tokens;
    std::vector<std::vector<int64_t>> next_beams;
    std::vector<double> next_scores;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t image = images[n];
      std::vector<size_t> chosen;  // candidate columns that continue as running beams
      for (int64_t j = 0; j < top_ids.size(1) && static_cast<int64_t>(chosen.size()) < K; ++j) {
        const int64_t row = n * K + ti[n][j] / V, token = ti[n][j] % V;
        if (token == eos_id) {
          // Only an EOS ranked among the top K ends a hypothesis (HF's rule).
          if (j < K && std::isfinite(ts[n][j])) {
            const size_t len = beams[row].size() + 1;
            best[image].offer(normalised(ts[n][j], len), ts[n][j], len, beams[row]);
          }
          continue;
        }
        chosen.push_back(static_cast<size_t>(j));
      }
      double best_running = -std::numeric_limits<double>::infinity();
      for (size_t j : chosen) best_running = std::max(best_running, ts[n][j]);

      bool done = last_step || chosen.empty();
      if (!done && best[image].full()) {
        // A running beam's sum can only fall; its length can reach max_len (which helps it when
        // length_penalty > 0) or be as short as one more token.
        const size_t reach = lp > 0 ? static_cast<size_t>(opts_.max_len) : beams[n * K].size() + 2;
        done = best[image].hyps.back().score >= normalised(best_running, reach);
      }
      if (done) {
        if (last_step)
          for (size_t j : chosen) {
            auto t = beams[n * K + ti[n][j] / V];
            t.push_back(ti[n][j] % V);
            if (std::isfinite(ts[n][j])) best[image].offer(normalised(ts[n][j], t.size()), ts[n][j], t.size(), t);
          }
        continue;
      }
      next_images.push_back(image);
      for (size_t j : chosen) {
        const int64_t row = n * K + ti[n][j] / V, token = ti[n][j] % V;
        auto t = beams[row];
        t.push_back(token);
        next_beams.push_back(std::move(t));
        next_scores.push_back(ts[n][j]);
        source_rows.push_back(row);
        next_tokens.push_back(token);
      }
      // Fewer than K continuations (tiny vocabularies): pad with dead beams.
      for (size_t k = chosen.size(); k < static_cast<size_t>(K); ++k) {
        next_beams.push_back(next_beams.back());
        next_scores.push_back(-std::numeric_limits<double>::infinity());
        source_rows.push_back(source_rows.back());
        next_tokens.push_back(next_tokens.back());
      }
    }
    if (next_images.empty()) break;
    images = std::move(next_images);
    beams = std::move(next_beams);
    beam_scores = std::move(next_scores);
    cache.reorder(index_tensor(source_rows, device));
    logits = step_logits(gpt2, next_tokens, cache, device);
  }

  std::vector<std::vector<Generated>> out(B);
  for (int64_t b = 0; b < B; ++b) {
    for (Hypothesis& h : best[b].hyps)
      out[b].push_back(Generated{std::move(h.tokens), h.sum, static_cast<int64_t>(h.length)});
    if (out[b].empty()) out[b].emplace_back();  // nothing finished with a finite score
  }
  return out;
}

}  // namespace clipcap
