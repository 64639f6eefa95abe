#include "model/decoding.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "common/json_util.h"

namespace clipcap {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

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

torch::Tensor index_tensor(const std::vector<int64_t>& v, const torch::Device& device) {
  return torch::tensor(v, torch::kInt64).to(device);
}

// The logits of the last position: (N, V) float32.
torch::Tensor last_logits(GPT2Impl& gpt2, const torch::Tensor& hidden) {
  return gpt2.logits(hidden.select(1, -1)).to(torch::kFloat32);  // (N, V)
}

torch::Tensor step_forward(GPT2Impl& gpt2, const std::vector<int64_t>& next_tokens, KVCache& cache,
                           const torch::Device& device) {
  auto ids = index_tensor(next_tokens, device).unsqueeze(1);  // (N, 1)
  return last_logits(gpt2, gpt2.forward(gpt2.embed(ids), {}, &cache));
}

}  // namespace

void DecodeOptions::validate() const {
  auto fail = [](const std::string& what) { throw Error("decoding options: " + what); };
  if (max_len < 1) fail("max_len (--max-len) must be >= 1, got " + std::to_string(max_len));
  if (min_len < 0) fail("min_len (--min-len) must be >= 0, got " + std::to_string(min_len));
  if (beam_size < 1) fail("beam_size (--beam-size) must be >= 1, got " + std::to_string(beam_size));
  if (!std::isfinite(length_penalty)) fail("length_penalty (--length-penalty) must be finite");
  if (!(temperature > 0.0f) || !std::isfinite(temperature))
    fail("temperature (--temperature) must be > 0, got " + std::to_string(temperature));
  if (top_k < 0) fail("top_k (--top-k) must be >= 0, got " + std::to_string(top_k));
  if (!(top_p > 0.0f && top_p <= 1.0f)) fail("top_p (--top-p) must be in (0, 1], got " + std::to_string(top_p));
  if (no_repeat_ngram_size < 0)
    fail("no_repeat_ngram_size (--no-repeat-ngram-size) must be >= 0, got " + std::to_string(no_repeat_ngram_size));
  if (do_sample && beam_size > 1) fail("sampling (--sample) cannot be combined with beam search (--beam-size > 1)");
}

nlohmann::json DecodeOptions::to_json() const {
  return {{"max_len", max_len},
          {"min_len", min_len},
          {"beam_size", beam_size},
          {"length_penalty", length_penalty},
          {"do_sample", do_sample},
          {"temperature", temperature},
          {"top_k", top_k},
          {"top_p", top_p},
          {"seed", seed},
          {"no_repeat_ngram_size", no_repeat_ngram_size}};
}

DecodeOptions DecodeOptions::from_json(const nlohmann::json& j, const std::string& where,
                                       const DecodeOptions& defaults) {
  DecodeOptions o = defaults;
  if (j.is_null()) return o;
  if (!j.is_object()) throw Error(where + ": 'decoding' must be an object");
  o.max_len = json_value<int>(j, "max_len", o.max_len, where);
  o.min_len = json_value<int>(j, "min_len", o.min_len, where);
  o.beam_size = json_value<int>(j, "beam_size", o.beam_size, where);
  o.length_penalty = json_value<float>(j, "length_penalty", o.length_penalty, where);
  o.do_sample = json_value<bool>(j, "do_sample", o.do_sample, where);
  o.temperature = json_value<float>(j, "temperature", o.temperature, where);
  o.top_k = json_value<int>(j, "top_k", o.top_k, where);
  o.top_p = json_value<float>(j, "top_p", o.top_p, where);
  o.seed = json_value<uint64_t>(j, "seed", o.seed, where);
  o.no_repeat_ngram_size = json_value<int>(j, "no_repeat_ngram_size", o.no_repeat_ngram_size, where);
  try {
    o.validate();
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  return o;
}

DecodeOptions DecodeOptions::from_json(const nlohmann::json& j, const std::string& where) {
  return from_json(j, where, DecodeOptions{});
}

// ---- logits processors -------------------------------------------------------------------------

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
  if (opts.do_sample) {
    if (opts.temperature != 1.0f) p.push_back(std::make_unique<TemperatureProcessor>(opts.temperature));
    if (opts.top_k > 0) p.push_back(std::make_unique<TopKProcessor>(opts.top_k));
    if (opts.top_p < 1.0f) p.push_back(std::make_unique<TopPProcessor>(opts.top_p));
  }
  return p;
}

// ---- greedy / sampling -------------------------------------------------------------------------

GreedySearch::GreedySearch(const DecodeOptions& opts) : opts_(opts), processors_(make_logits_processors(opts)) {}

std::vector<std::vector<int64_t>> GreedySearch::search(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds,
                                                       int64_t eos_id) {
  const int64_t B = prefix_embeds.size(0);
  const auto device = prefix_embeds.device();
  std::vector<std::vector<int64_t>> tokens(B);
  StepState state;
  state.tokens = &tokens;
  state.eos_id = eos_id;
  for (int64_t b = 0; b < B; ++b) state.rows.push_back(b);  // active rows, in batch order

  std::vector<at::Generator> generators;
  if (opts_.do_sample)
    for (int64_t b = 0; b < B; ++b) generators.push_back(at::make_generator<at::CPUGeneratorImpl>(opts_.seed));

  KVCache cache;
  auto logits = last_logits(gpt2, gpt2.forward(prefix_embeds, {}, &cache));  // (B, V)
  for (int step = 0; step < opts_.max_len; ++step) {
    auto scores = logits.contiguous();
    for (const auto& p : processors_) p->apply(scores, state);

    std::vector<int64_t> next(state.rows.size());
    if (opts_.do_sample) {
      auto probs = torch::softmax(scores, 1).cpu();  // (N, V)
      for (size_t i = 0; i < next.size(); ++i)
        next[i] = torch::multinomial(probs[i], 1, false, generators[state.rows[i]]).item<int64_t>();
    } else {
      auto best = scores.argmax(1).cpu();  // (N)
      for (size_t i = 0; i < next.size(); ++i) next[i] = best[i].item<int64_t>();
    }

    std::vector<int64_t> keep, keep_rows, keep_tokens;
    for (size_t i = 0; i < next.size(); ++i) {
      if (next[i] == eos_id) continue;
      tokens[state.rows[i]].push_back(next[i]);
      keep.push_back(static_cast<int64_t>(i));
      keep_rows.push_back(state.rows[i]);
      keep_tokens.push_back(next[i]);
    }
    if (keep.empty() || step + 1 == opts_.max_len) break;
    if (keep.size() != next.size()) cache.reorder(index_tensor(keep, device));
    state.rows = std::move(keep_rows);
    logits = step_forward(gpt2, keep_tokens, cache, device);
  }
  return tokens;
}

// ---- beam search -------------------------------------------------------------------------------

BeamSearch::BeamSearch(const DecodeOptions& opts) : opts_(opts), processors_(make_logits_processors(opts)) {}

std::vector<std::vector<int64_t>> BeamSearch::search(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds,
                                                     int64_t eos_id) {
  const int64_t B = prefix_embeds.size(0), K = opts_.beam_size;
  const auto device = prefix_embeds.device();
  const double lp = opts_.length_penalty;
  auto normalised = [&](double sum, size_t length) {
    return sum / std::pow(static_cast<double>(std::max<size_t>(length, 1)), lp);
  };

  struct Best {
    bool found = false;
    double score = -std::numeric_limits<double>::infinity();
    std::vector<int64_t> tokens;
    void offer(double s, const std::vector<int64_t>& t) {
      if (!found || s > score) found = true, score = s, tokens = t;
    }
  };
  std::vector<Best> best(B);

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
  auto logits = last_logits(gpt2, gpt2.forward(prefix_embeds, {}, &cache));  // (B, V)
  {
    auto expand = torch::arange(B, torch::TensorOptions().dtype(torch::kInt64).device(device)).repeat_interleave(K);
    cache.reorder(expand);
    logits = logits.index_select(0, expand);  // (B*K, V)
  }
  const int64_t V = logits.size(1);

  for (int step = 0; step < opts_.max_len; ++step) {
    const int64_t N = static_cast<int64_t>(images.size());
    auto scores = torch::log_softmax(logits, 1);  // (N*K, V)
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
          if (j < K && std::isfinite(ts[n][j])) best[image].offer(normalised(ts[n][j], beams[row].size() + 1), beams[row]);
          continue;
        }
        chosen.push_back(static_cast<size_t>(j));
      }
      double best_running = -std::numeric_limits<double>::infinity();
      for (size_t j : chosen) best_running = std::max(best_running, ts[n][j]);

      bool done = last_step || chosen.empty();
      if (!done && best[image].found) {
        // A running beam's sum can only fall; its length can reach max_len (which helps it when
        // length_penalty > 0) or be as short as one more token.
        const size_t reach = lp > 0 ? static_cast<size_t>(opts_.max_len) : beams[n * K].size() + 2;
        done = best[image].score >= normalised(best_running, reach);
      }
      if (done) {
        if (last_step)
          for (size_t j : chosen) {
            auto t = beams[n * K + ti[n][j] / V];
            t.push_back(ti[n][j] % V);
            if (std::isfinite(ts[n][j])) best[image].offer(normalised(ts[n][j], t.size()), t);
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
    logits = step_forward(gpt2, next_tokens, cache, device);
  }

  std::vector<std::vector<int64_t>> out(B);
  for (int64_t b = 0; b < B; ++b) out[b] = best[b].tokens;
  return out;
}

std::unique_ptr<SearchStrategy> make_search_strategy(const DecodeOptions& opts) {
  if (opts.beam_size > 1) return std::make_unique<BeamSearch>(opts);
  return std::make_unique<GreedySearch>(opts);
}

// ---- entry points ------------------------------------------------------------------------------

std::vector<std::vector<int64_t>> generate(GPT2& gpt2, const torch::Tensor& prefix_embeds, const DecodeOptions& opts,
                                           int64_t eos_id) {
  opts.validate();
  if (prefix_embeds.dim() != 3 || prefix_embeds.size(2) != gpt2->config.n_embd)
    throw Error("generate: prefix embeddings must be (B, P, " + std::to_string(gpt2->config.n_embd) + "), got " +
                shape_string(prefix_embeds.sizes().vec()));
  const int64_t P = prefix_embeds.size(1);
  if (P + opts.max_len - 1 > gpt2->config.n_positions)
    throw Error("decoding options: a prefix of " + std::to_string(P) + " embeddings plus max_len " +
                std::to_string(opts.max_len) + " exceeds GPT-2's n_positions " +
                std::to_string(gpt2->config.n_positions) + "; lower --max-len");
  if (prefix_embeds.size(0) == 0) return {};
  torch::NoGradGuard no_grad;
  EvalModeGuard eval(*gpt2);
  auto prefix = prefix_embeds.to(gpt2->wte->weight.options());
  return make_search_strategy(opts)->search(*gpt2, prefix, eos_id);
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
