// Reranked decoding (model/clip_reranker.h): the candidates it chooses from (beam search's n best,
// seeded samples), its score, and the local backend reranking with the embedded default's CLIP.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

#include "backend/local_backend.h"
#include "common/error.h"
#include "image/image_io.h"
#include "model/captioner.h"
#include "model/clip_embedder.h"
#include "model/clip_reranker.h"
#include "model/decoding.h"
#include "model/gpt2.h"
#include "tests/test_support.h"

namespace clipcap {
namespace {

using test::fixture;

GPT2& tiny_gpt2() {
  static GPT2 model = load_gpt2(fixture("tiny-gpt2"));
  return model;
}

torch::Tensor random_prefix(int64_t B, int64_t P, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randn({B, P, tiny_gpt2()->config.n_embd}, gen) * 3;
}

DecodeOptions beam(int size) {
  DecodeOptions o;
  o.strategy = "beam";
  o.beam_size = size;
  o.max_len = 10;
  return o;
}

TEST(RerankCandidates, BeamsFirstCandidateIsThePlainBeamResultAndTheRestScoreLower) {
  const torch::Tensor prefix = random_prefix(3, 3, 31);
  const int64_t eos = tiny_gpt2()->config.eos_token_id;
  const auto plain = generate_scored(tiny_gpt2(), prefix, beam(5), eos);
  const auto lists = generate_candidates(tiny_gpt2(), prefix, beam(5), eos, 5);
  ASSERT_EQ(lists.size(), 3u);
  for (size_t b = 0; b < lists.size(); ++b) {
    ASSERT_GE(lists[b].size(), 2u) << "image " << b;
    EXPECT_EQ(lists[b][0].tokens, plain[b].tokens);
    std::set<std::vector<int64_t>> distinct;
    for (size_t k = 0; k < lists[b].size(); ++k) {
      const Generated& g = lists[b][k];
      distinct.insert(g.tokens);
      // Each candidate's log-probability is GPT-2's own (the EOS included when written).
      std::vector<int64_t> scored = g.tokens;
      if (g.scored_tokens > static_cast<int64_t>(g.tokens.size())) scored.push_back(eos);
      EXPECT_NEAR(g.logprob, sequence_logprob(tiny_gpt2(), prefix.slice(0, b, b + 1), scored), 1e-3);
      if (k > 0) {  // best first, by length-normalised score (length_penalty 1)
        const Generated& prev = lists[b][k - 1];
        EXPECT_GE(prev.logprob / prev.scored_tokens, g.logprob / g.scored_tokens - 1e-9);
      }
    }
    EXPECT_EQ(distinct.size(), lists[b].size()) << "image " << b << ": a candidate twice";
  }
}

TEST(RerankCandidates, OneCandidateIsPlainDecodingForEveryStrategy) {
  const torch::Tensor prefix = random_prefix(4, 3, 7);
  const int64_t eos = tiny_gpt2()->config.eos_token_id;
  DecodeOptions greedy;
  greedy.max_len = 10;
  DecodeOptions sample = greedy;
  sample.strategy = "sample";
  sample.seed = 5;
  for (const DecodeOptions& o : {greedy, sample, beam(3)}) {
    const auto plain = generate_scored(tiny_gpt2(), prefix, o, eos);
    const auto lists = generate_candidates(tiny_gpt2(), prefix, o, eos, 1);
    ASSERT_EQ(lists.size(), plain.size());
    for (size_t b = 0; b < plain.size(); ++b) {
      ASSERT_EQ(lists[b].size(), 1u);
      EXPECT_EQ(lists[b][0].tokens, plain[b].tokens) << o.strategy << " image " << b;
      EXPECT_DOUBLE_EQ(lists[b][0].logprob, plain[b].logprob);
    }
  }
}

TEST(RerankCandidates, SampledCandidatesAreTheSeedsDrawsAndRepeatable) {
  const torch::Tensor prefix = random_prefix(2, 3, 9);
  DecodeOptions o;
  o.strategy = "sample";
  o.max_len = 10;
  o.seed = 100;
  const auto lists = generate_candidates(tiny_gpt2(), prefix, o, -1, 4);
  EXPECT_EQ(generate_candidates(tiny_gpt2(), prefix, o, -1, 4)[1][3].tokens, lists[1][3].tokens);
  for (size_t c = 0; c < 4; ++c) {  // candidate c is the plain sample with seed + c
    DecodeOptions s = o;
    s.seed = o.seed + c;
    const auto plain = generate(tiny_gpt2(), prefix, s, -1);
    for (size_t b = 0; b < 2; ++b) EXPECT_EQ(lists[b][c].tokens, plain[b]) << "image " << b << " candidate " << c;
  }
  EXPECT_NE(lists[0][0].tokens, lists[0][1].tokens);
}

TEST(RerankScore, MixesMeanLogprobWithClipsLogSoftmaxOverTheCandidates) {
  const std::vector<double> lm = {-0.5, -1.5}, cos = {0.2, 0.4};
  const double scale = 10;
  const double lse = std::log(std::exp(2.0) + std::exp(4.0));
  const auto s = rerank_scores(lm, cos, scale, 0.25);
  EXPECT_NEAR(s[0], 0.75 * -0.5 + 0.25 * (2.0 - lse), 1e-12);
  EXPECT_NEAR(s[1], 0.75 * -1.5 + 0.25 * (4.0 - lse), 1e-12);
  // The ends: the language model alone, CLIP alone.
  const auto lm_only = rerank_scores(lm, cos, scale, 0), clip_only = rerank_scores(lm, cos, scale, 1);
  EXPECT_GT(lm_only[0], lm_only[1]);
  EXPECT_GT(clip_only[1], clip_only[0]);
  EXPECT_THROW(rerank_scores({-1.0}, cos, scale, 0.5), Error);
}

// ---- with the embedded default (models/emoji-tiny + its CLIP, models/emoji-clip) --------------

std::string model_dir() { return test::source_path("models/emoji-tiny"); }
std::string clip_dir() { return test::source_path("models/emoji-clip"); }

ClipEmbedder& emoji_clip() {
  static ClipEmbedder clip(clip_dir(), "--rerank-clip");
  return clip;
}

std::vector<Image> fixture_images() {
  std::vector<Image> images;
  for (const char* f : {"images/rgb_160x120.png", "images/palette_100x30.png", "images/rgba_40x40.png"})
    images.push_back(read_image(fixture(f)));
  return images;
}

TEST(ClipReranker, PicksTheCandidateTheClipPrefers) {
  // An "image" whose embedding is a candidate text's: CLIP alone (W = 1) must choose that text,
  // whatever its place and language-model score.
  const std::vector<std::string> texts = {"grinning face", "flag of scotland", "red apple"};
  const torch::Tensor t = emoji_clip().embed_texts(texts);
  ClipReranker reranker(std::make_unique<ClipEmbedder>(clip_dir(), "--rerank-clip"));
  std::vector<std::vector<Caption>> candidates(3);
  for (size_t i = 0; i < 3; ++i)
    for (size_t k = 0; k < texts.size(); ++k) {
      Caption c;
      c.text = texts[k];
      c.logprob = -1.0 * static_cast<double>(k + 1);  // the LM prefers the first
      c.scored_tokens = 3;
      candidates[i].push_back(c);
    }
  const std::vector<Caption> chosen = reranker.choose(t, candidates, 1.0);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(chosen[i].text, texts[i]);
    EXPECT_EQ(chosen[i].rerank.candidates, 3);
    EXPECT_NEAR(chosen[i].rerank.clip_similarity, 1.0, 1e-4);
    EXPECT_FALSE(std::isnan(chosen[i].rerank.rerank_score));
  }
  // W = 0: the language model's choice for every image.
  for (const Caption& c : reranker.choose(t, candidates, 0.0)) EXPECT_EQ(c.text, texts[0]);
}

TEST(ClipReranker, TheDefaultModelSharesItsClipsVisionTower) {
  EXPECT_TRUE(same_vision_tower(model_dir(), clip_dir(), /*with_projection=*/false));
  // A captioner built on another CLIP (the golden tiny CLIP) does not.
  EXPECT_FALSE(same_vision_tower(model_dir(), fixture("tiny-clip"), false));
}

LocalBackend emoji_backend(bool shares_tower) {
  LocalBackend b(Captioner::load(model_dir()), model_dir());
  b.set_reranker(std::make_unique<ClipReranker>(std::make_unique<ClipEmbedder>(clip_dir(), "--rerank-clip")), shares_tower);
  return b;
}

DecodeOptions reranked(int k, float w, const DecodeOptions& base = {}) {
  DecodeOptions o = base;
  o.rerank = "clip";
  o.rerank_candidates = k;
  o.rerank_weight = w;
  return o;
}

TEST(LocalBackendRerank, OneCandidateCaptionsLikePlainDecodingWithItsScores) {
  LocalBackend b = emoji_backend(true);
  const auto images = fixture_images();
  const DecodeOptions greedy = b.captioner().config().decoding;  // the model's max_len fits its positions
  DecodeOptions beam3 = greedy;
  beam3.strategy = "beam";
  beam3.beam_size = 3;
  for (const DecodeOptions& base : {greedy, beam3}) {
    const auto plain = b.caption_images(images, base);
    const auto one = b.caption_images(images, reranked(1, 0.5f, base));
    ASSERT_EQ(plain.size(), one.size());
    for (size_t i = 0; i < plain.size(); ++i) {
      EXPECT_EQ(one[i].text, plain[i].text) << base.strategy << " image " << i;
      EXPECT_EQ(one[i].rerank.candidates, 1);
      EXPECT_GT(one[i].rerank.clip_similarity, -1.0);
      EXPECT_TRUE(std::isnan(plain[i].rerank.clip_similarity));
    }
  }
}

TEST(LocalBackendRerank, ImageEmbeddingsFromTheCaptionerMatchThoseFromThePixels) {
  // Sharing the vision tower, the reranker projects the captioner's embedding; otherwise it runs
  // its own CLIP on the pixels. Both must choose the same captions with the same similarities.
  LocalBackend shared = emoji_backend(true), own = emoji_backend(false);
  const auto images = fixture_images();
  const DecodeOptions base = shared.captioner().config().decoding;
  const auto a = shared.caption_images(images, reranked(6, 0.5f, base));
  const auto c = own.caption_images(images, reranked(6, 0.5f, base));
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].text, c[i].text);
    EXPECT_NEAR(a[i].rerank.clip_similarity, c[i].rerank.clip_similarity, 1e-4);
    EXPECT_EQ(a[i].rerank.candidates, 6);
  }
  EXPECT_TRUE(shared.embedding_space().has_value());
  EXPECT_FALSE(own.embedding_space().has_value());  // eval must give it images
}

TEST(LocalBackendRerank, SampledRerankingIsDeterministicForASeed) {
  LocalBackend b = emoji_backend(true);
  const auto images = fixture_images();
  DecodeOptions sample = b.captioner().config().decoding;
  sample.strategy = "sample";
  sample.temperature = 1.5f;
  sample.seed = 11;
  const auto first = b.caption_images(images, reranked(5, 0.7f, sample));
  const auto again = b.caption_images(images, reranked(5, 0.7f, sample));
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].text, again[i].text);
    EXPECT_DOUBLE_EQ(first[i].rerank.rerank_score, again[i].rerank.rerank_score);
  }
}

TEST(LocalBackendRerank, WithoutAClipItIsANamedError) {
  LocalBackend b(Captioner::load(model_dir()), model_dir());
  test::expect_error([&] { b.caption_images(fixture_images(), reranked(4, 0.5f, b.captioner().config().decoding)); },
                     {"--rerank clip", "--rerank-clip"});
}

}  // namespace
}  // namespace clipcap
