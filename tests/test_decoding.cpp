// Decoding strategies on the tiny GPT-2 fixture: the golden greedy continuation, batching,
// beam search, sampling and the logits processors.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "model/beam_search.h"
#include "model/decoding.h"
#include "model/logits_processors.h"
#include "model/gpt2.h"
#include "tests/test_support.h"

namespace clipcap {
namespace {

using test::expected_tensor;
using test::fixture;

GPT2& tiny_gpt2() {
  static GPT2 model = load_gpt2(fixture("tiny-gpt2"));
  return model;
}

int64_t eos() { return tiny_gpt2()->config.eos_token_id; }

// Random prefixes (B, P, D), reproducible.
torch::Tensor random_prefix(int64_t B, int64_t P, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randn({B, P, tiny_gpt2()->config.n_embd}, gen);
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kInt64).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

bool has_repeated_ngram(const std::vector<int64_t>& s, size_t n) {
  std::set<std::vector<int64_t>> seen;
  for (size_t i = 0; i + n <= s.size(); ++i)
    if (!seen.insert(std::vector<int64_t>(s.begin() + i, s.begin() + i + n)).second) return true;
  return false;
}

TEST(Decoding, GreedyMatchesFixture) {
  const auto& prefix = expected_tensor("gpt2.safetensors", "gpt2.greedy.prefix_embeds");  // (1, P, D)
  auto want = to_vector(expected_tensor("gpt2.safetensors", "gpt2.greedy.tokens"));
  DecodeOptions opts;
  opts.max_len = static_cast<int>(want.size());
  auto got = generate(tiny_gpt2(), prefix, opts, /*eos_id=*/-1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], want);
}

TEST(Decoding, BatchGivesTheSameTokensAsEachAlone) {
  auto prefixes = random_prefix(3, 4, 7);
  for (int beam : {1, 3}) {
    DecodeOptions opts;
    opts.max_len = 20;
    opts.strategy = beam > 1 ? "beam" : "greedy";
    opts.beam_size = beam;
    auto batch = generate(tiny_gpt2(), prefixes, opts, eos());
    ASSERT_EQ(batch.size(), 3u);
    for (int64_t b = 0; b < 3; ++b) {
      auto alone = generate(tiny_gpt2(), prefixes.slice(0, b, b + 1), opts, eos());
      EXPECT_EQ(batch[b], alone[0]) << "row " << b << ", beam " << beam;
    }
  }
}

TEST(Decoding, BatchWithRowsStoppingEarlyMatchesSingles) {
  // Many prefixes so that some rows hit EOS before others (rows are dropped from the batch).
  auto prefixes = random_prefix(8, 3, 11) * 3;
  DecodeOptions opts;
  opts.max_len = 30;
  auto batch = generate(tiny_gpt2(), prefixes, opts, eos());
  std::set<size_t> lengths;
  for (int64_t b = 0; b < 8; ++b) {
    lengths.insert(batch[b].size());
    EXPECT_EQ(batch[b], generate(tiny_gpt2(), prefixes.slice(0, b, b + 1), opts, eos())[0]) << "row " << b;
    for (auto t : batch[b]) EXPECT_NE(t, eos());
  }
  EXPECT_GE(lengths.size(), 2u) << "every row stopped at the same step: the test exercises nothing";
}

TEST(Decoding, BeamSizeOneIsGreedy) {
  auto prefixes = random_prefix(4, 4, 3);
  DecodeOptions greedy;
  greedy.max_len = 15;
  auto want = generate(tiny_gpt2(), prefixes, greedy, eos());
  DecodeOptions beam1 = greedy;
  beam1.strategy = "beam";
  beam1.beam_size = 1;
  EXPECT_EQ(generate(tiny_gpt2(), prefixes, beam1, eos()), want);
  // The beam search machinery itself with one beam and no length normalisation is greedy too.
  beam1.length_penalty = 0.0f;
  torch::NoGradGuard no_grad;
  std::vector<std::vector<int64_t>> got;
  for (auto& g : BeamSearch(beam1).search(*tiny_gpt2(), prefixes, eos())) got.push_back(g.tokens);
  EXPECT_EQ(got, want);
}

TEST(Decoding, BeamSearchFindsHigherScoringSequences) {
  int strictly_better = 0;
  for (uint64_t seed = 20; seed < 26; ++seed) {
    auto prefix = random_prefix(1, 4, seed);
    DecodeOptions greedy;
    greedy.max_len = 8;
    DecodeOptions beam = greedy;
    beam.strategy = "beam";
    beam.beam_size = 4;
    // No EOS: every candidate has max_len tokens, so summed log-probabilities compare directly.
    auto g = generate(tiny_gpt2(), prefix, greedy, -1)[0];
    auto b = generate(tiny_gpt2(), prefix, beam, -1)[0];
    ASSERT_EQ(b.size(), g.size());
    double lg = sequence_logprob(tiny_gpt2(), prefix, g), lb = sequence_logprob(tiny_gpt2(), prefix, b);
    EXPECT_GE(lb, lg - 1e-4) << "seed " << seed;
    if (lb > lg + 1e-3) ++strictly_better;
  }
  EXPECT_GE(strictly_better, 1);
}

TEST(Decoding, BeamSearchStopsOnEos) {
  auto prefixes = random_prefix(3, 3, 11) * 3;
  DecodeOptions opts;
  opts.max_len = 30;
  opts.strategy = "beam";
  opts.beam_size = 3;
  auto got = generate(tiny_gpt2(), prefixes, opts, eos());
  for (const auto& seq : got) {
    EXPECT_LE(seq.size(), 30u);
    for (auto t : seq) EXPECT_NE(t, eos());
  }
}

TEST(Decoding, TopKOneSamplingIsGreedy) {
  auto prefixes = random_prefix(3, 4, 5);
  DecodeOptions greedy;
  greedy.max_len = 12;
  DecodeOptions sample = greedy;
  sample.strategy = "sample";
  sample.top_k = 1;
  sample.seed = 1234;
  EXPECT_EQ(generate(tiny_gpt2(), prefixes, sample, eos()), generate(tiny_gpt2(), prefixes, greedy, eos()));
  DecodeOptions nucleus = greedy;
  nucleus.strategy = "sample";
  nucleus.top_p = 1e-6f;  // only the most likely token is left
  EXPECT_EQ(generate(tiny_gpt2(), prefixes, nucleus, eos()), generate(tiny_gpt2(), prefixes, greedy, eos()));
}

TEST(Decoding, SamplingIsReproducibleBySeed) {
  auto prefixes = random_prefix(3, 4, 9);
  DecodeOptions opts;
  opts.max_len = 12;
  opts.strategy = "sample";
  opts.seed = 42;
  auto a = generate(tiny_gpt2(), prefixes, opts, -1);
  EXPECT_EQ(generate(tiny_gpt2(), prefixes, opts, -1), a);
  // A row's sample does not depend on the other rows of its batch.
  EXPECT_EQ(generate(tiny_gpt2(), prefixes.slice(0, 1, 2), opts, -1)[0], a[1]);
  opts.seed = 43;
  EXPECT_NE(generate(tiny_gpt2(), prefixes, opts, -1), a);
  // ... and sampling is not greedy.
  DecodeOptions greedy;
  greedy.max_len = 12;
  EXPECT_NE(generate(tiny_gpt2(), prefixes, greedy, -1), a);
}

// The caption server batches requests that differ only in their seed: row b then samples exactly
// what it would alone with seed row_seeds[b], candidates included (candidate c: that seed + c).
TEST(Decoding, RowSeedsSampleEachRowAsItsOwnSeedWould) {
  auto prefixes = random_prefix(3, 4, 9);
  DecodeOptions opts;
  opts.max_len = 12;
  opts.strategy = "sample";
  const std::vector<uint64_t> seeds = {42, 7, 42};
  const auto together = generate_scored(tiny_gpt2(), prefixes, opts, -1, nullptr, seeds);
  ASSERT_EQ(together.size(), 3u);
  for (int64_t b = 0; b < 3; ++b) {
    DecodeOptions alone = opts;
    alone.seed = seeds[static_cast<size_t>(b)];
    const auto expected = generate_scored(tiny_gpt2(), prefixes.slice(0, b, b + 1), alone, -1);
    EXPECT_EQ(together[static_cast<size_t>(b)].tokens, expected[0].tokens) << "row " << b;
    // Batch size changes the products' summation order, not the draws.
    EXPECT_NEAR(together[static_cast<size_t>(b)].logprob, expected[0].logprob, 1e-4) << "row " << b;
  }
  EXPECT_NE(together[0].tokens, together[1].tokens);  // the seeds were used, not opts.seed for all

  const auto candidates = generate_candidates(tiny_gpt2(), prefixes, opts, -1, 2, seeds);
  DecodeOptions seven = opts;
  seven.seed = 7;
  const auto alone = generate_candidates(tiny_gpt2(), prefixes.slice(0, 1, 2), seven, -1, 2);
  ASSERT_EQ(candidates.size(), 3u);
  ASSERT_EQ(candidates[1].size(), 2u);
  EXPECT_EQ(candidates[1][0].tokens, alone[0][0].tokens);
  EXPECT_EQ(candidates[1][1].tokens, alone[0][1].tokens);

  // One seed per row or none: anything else is a named error, not a silent reuse.
  EXPECT_THROW(generate_scored(tiny_gpt2(), prefixes, opts, -1, nullptr, {1, 2}), Error);
}

TEST(Decoding, NoRepeatNgramLeavesNoRepeatedBigram) {
  const auto& prefix = expected_tensor("gpt2.safetensors", "gpt2.greedy.prefix_embeds");
  DecodeOptions opts;
  opts.max_len = 20;
  ASSERT_TRUE(has_repeated_ngram(generate(tiny_gpt2(), prefix, opts, -1)[0], 2));  // the fixture repeats
  opts.no_repeat_ngram_size = 2;
  for (int beam : {1, 3}) {
    for (bool sample : {false, true}) {
      if (beam > 1 && sample) continue;
      opts.strategy = sample ? "sample" : beam > 1 ? "beam" : "greedy";
      opts.beam_size = beam;
      auto got = generate(tiny_gpt2(), prefix, opts, -1)[0];
      EXPECT_EQ(got.size(), 20u);
      EXPECT_FALSE(has_repeated_ngram(got, 2)) << "beam " << beam << " sample " << sample;
    }
  }
}

TEST(Decoding, MaxLenIsRespected) {
  auto prefixes = random_prefix(2, 4, 13);
  for (int beam : {1, 2}) {
    DecodeOptions opts;
    opts.strategy = beam > 1 ? "beam" : "greedy";
    opts.beam_size = beam;
    opts.max_len = 5;
    for (const auto& seq : generate(tiny_gpt2(), prefixes, opts, -1)) EXPECT_EQ(seq.size(), 5u);
    for (const auto& seq : generate(tiny_gpt2(), prefixes, opts, eos())) EXPECT_LE(seq.size(), 5u);
  }
}

TEST(Decoding, MinLenDelaysEos) {
  auto prefixes = random_prefix(8, 3, 11) * 3;
  DecodeOptions opts;
  opts.max_len = 30;
  auto plain = generate(tiny_gpt2(), prefixes, opts, eos());
  size_t shortest = 1000;
  for (const auto& s : plain) shortest = std::min(shortest, s.size());
  opts.min_len = static_cast<int>(shortest) + 3;
  for (int beam : {1, 2}) {
    opts.strategy = beam > 1 ? "beam" : "greedy";
    opts.beam_size = beam;
    for (const auto& s : generate(tiny_gpt2(), prefixes, opts, eos())) EXPECT_GE(s.size(), shortest + 3);
  }
}

TEST(Decoding, ProcessorsEditScoresAsDocumented) {
  std::vector<std::vector<int64_t>> tokens = {{5, 6, 5}, {1, 2, 3}};
  StepState state;
  state.tokens = &tokens;
  state.rows = {0, 1};
  state.eos_id = 9;

  auto scores = torch::zeros({2, 10});
  NoRepeatNGramProcessor(2).apply(scores, state);  // row 0 ends with 5, and 5 was followed by 6
  EXPECT_TRUE(std::isinf(scores[0][6].item<float>()));
  EXPECT_EQ(torch::isinf(scores).sum().item<int64_t>(), 1);

  scores = torch::zeros({2, 10});
  MinLengthProcessor(4).apply(scores, state);  // both rows have 3 tokens < 4: EOS banned
  EXPECT_TRUE(std::isinf(scores[0][9].item<float>()) && std::isinf(scores[1][9].item<float>()));

  scores = torch::log(torch::tensor({{0.5f, 0.3f, 0.15f, 0.05f}}));
  TopPProcessor(0.7f).apply(scores, state);  // 0.5 + 0.3 reaches 0.7: keep two
  EXPECT_EQ(torch::isinf(scores).sum().item<int64_t>(), 2);
  EXPECT_TRUE(std::isinf(scores[0][2].item<float>()) && std::isinf(scores[0][3].item<float>()));

  scores = torch::tensor({{1.0f, 4.0f, 3.0f, 2.0f}});
  TopKProcessor(2).apply(scores, state);
  EXPECT_TRUE(std::isinf(scores[0][0].item<float>()) && std::isinf(scores[0][3].item<float>()));
  EXPECT_FALSE(std::isinf(scores[0][1].item<float>()) || std::isinf(scores[0][2].item<float>()));
}

TEST(Decoding, BadOptionsAreErrors) {
  auto prefix = random_prefix(1, 4, 1);
  auto expect_error = [&](DecodeOptions o, const std::string& needle) {
    try {
      generate(tiny_gpt2(), prefix, o, eos());
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  DecodeOptions o;
  o.beam_size = 0;
  expect_error(o, "beam_size");
  o = {};
  o.top_p = 0.0f;
  expect_error(o, "top_p");
  o = {};
  o.temperature = 0.0f;
  expect_error(o, "temperature");
  o = {};
  o.strategy = "nucleus";
  expect_error(o, "strategy");
  o = {};
  o.max_len = static_cast<int>(tiny_gpt2()->config.n_positions) + 10;
  expect_error(o, "n_positions");
  o = {};
  o.rerank = "bleu";
  expect_error(o, "rerank (--rerank) must be one of none, clip");
  o = {};
  o.rerank_candidates = 0;
  expect_error(o, "rerank_candidates (--rerank-candidates) must be >= 1");
  o = {};
  o.rerank_weight = 1.5f;
  expect_error(o, "rerank_weight (--rerank-weight) must be in [0, 1]");
}

TEST(Decoding, OptionsRoundTripThroughJson) {
  DecodeOptions o;
  o.max_len = 17;
  o.strategy = "beam";
  o.beam_size = 3;
  o.length_penalty = 0.5f;
  o.seed = 99;
  auto back = DecodeOptions::from_json(o.to_json(), "test");
  EXPECT_EQ(back.strategy, "beam");
  EXPECT_EQ(back.max_len, 17);
  EXPECT_EQ(back.beam_size, 3);
  EXPECT_FLOAT_EQ(back.length_penalty, 0.5f);
  EXPECT_EQ(back.seed, 99u);
}

// Model directories written before "strategy" existed keep decoding the way they did.
TEST(Decoding, SectionsWithoutAStrategyTakeItFromDoSampleAndBeamSize) {
  EXPECT_EQ(DecodeOptions::from_json({{"beam_size", 3}, {"do_sample", false}}, "old").strategy, "beam");
  EXPECT_EQ(DecodeOptions::from_json({{"beam_size", 1}, {"do_sample", true}}, "old").strategy, "sample");
  EXPECT_EQ(DecodeOptions::from_json({{"beam_size", 1}, {"max_len", 9}}, "old").strategy, "greedy");
  DecodeOptions defaults;
  defaults.strategy = "beam";
  EXPECT_EQ(DecodeOptions::from_json({{"max_len", 9}}, "old", defaults).strategy, "beam");
  try {
    DecodeOptions::from_json({{"strategy", "fast"}}, "m/config.json: decoding");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("m/config.json: decoding"), std::string::npos) << msg;
    EXPECT_NE(msg.find("strategy (--strategy) must be one of greedy, sample, beam, got \"fast\""), std::string::npos) << msg;
  }
}

// Every strategy reports the log-probability GPT-2 gives what it wrote: the sum over its tokens and
// the EOS, as one full forward computes it.
TEST(Decoding, ScoredSequencesCarryTheirLogProbability) {
  auto prefixes = random_prefix(3, 3, 11) * 3;
  for (const char* strategy : {"greedy", "sample", "beam"}) {
    DecodeOptions opts;
    opts.strategy = strategy;
    opts.beam_size = 3;
    opts.max_len = 30;
    opts.seed = 5;
    const auto got = generate_scored(tiny_gpt2(), prefixes, opts, eos());
    ASSERT_EQ(got.size(), 3u);
    for (int64_t b = 0; b < 3; ++b) {
      const Generated& g = got[b];
      std::vector<int64_t> scored = g.tokens;
      const bool ended = static_cast<int64_t>(g.tokens.size()) < g.scored_tokens;
      if (ended) scored.push_back(eos());
      EXPECT_EQ(g.scored_tokens, static_cast<int64_t>(scored.size())) << strategy << " row " << b;
      EXPECT_NEAR(g.logprob, sequence_logprob(tiny_gpt2(), prefixes.slice(0, b, b + 1), scored), 1e-3)
          << strategy << " row " << b;
      EXPECT_LT(g.logprob, 0.0);
    }
  }
}

}  // namespace
}  // namespace clipcap
