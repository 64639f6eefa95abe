// Caption metrics against values re-derived by hand from the COCO caption toolkit's formulas
// (an independent Python re-computation of bleu_scorer.py / rouge.py / cider_scorer.py on the
// token strings noted next to each corpus).
#include <gtest/gtest.h>

#include <array>
#include <cmath>

#include "common/error.h"
#include "eval/bleu.h"
#include "eval/caption_metrics.h"
#include "eval/cider.h"
#include "eval/rouge.h"

namespace clipcap {
namespace {

void expect_rel(double got, double want, double rel = 1e-9) {
  EXPECT_NEAR(got, want, std::max(std::fabs(want) * rel, 1e-300)) << "want " << want;
}
// BLEU-1..4 of a corpus or of one image.
template <typename Scores>
void expect_bleu(const Scores& got, const std::array<double, 4>& want) {
  for (int k = 0; k < 4; ++k) expect_rel(got["BLEU-" + std::to_string(k + 1)], want[k]);
}

// Three images with 3, 2 and 4 references; tokenised: "a dog runs on the grass" vs
// "a dog is running on the grass" | "a brown dog runs across a field" | "the dog runs", ...
std::vector<ScoredItem> main_corpus() {
  return {{"img1", "A dog runs on the grass.",
           {"A dog is running on the grass.", "A brown dog runs across a field.", "The dog runs."}},
          {"img2", "Two people ride bikes down a road.",
           {"Two cyclists ride down the road.", "People riding bikes on a street."}},
          {"img3", "A cat sits.",
           {"A cat is sitting on a couch.", "A cat sits on a sofa.", "A small cat.", "The cat sits on the couch."}}};
}

TEST(CaptionMetrics, CorpusScoresMatchTheToolkitFormulas) {
  const CaptionScores s = score_captions(main_corpus());
  expect_bleu(s, {0.999999999875, 0.6793662203969375, 0.4519384563077509, 6.026080977604595e-05});
  expect_rel(s["ROUGE-L"], 0.7182997623706604);
  expect_rel(s["CIDEr-D"], 2.1232852222269742);
}

TEST(CaptionMetrics, PerImageScoresMatchTheToolkitLists) {
  const CaptionScores s = score_captions(main_corpus());
  ASSERT_EQ(s.items.size(), 3u);
  EXPECT_EQ(s.items[1].id, "img2");
  expect_bleu(s.items[0], {0.8464817246084536, 0.757116271161685, 0.4950255155463765, 7.648825823211366e-05});
  expect_bleu(s.items[1], {0.9999999998571429, 1.290994448536009e-08, 3.2182979481388375e-11, 1.6990442445245064e-12});
  expect_bleu(s.items[2], {0.9999999993333338, 0.9999999992500005, 0.9999999990555564, 0.03162277657664911});
  expect_rel(s.items[0]["ROUGE-L"], 0.7587064676616916);
  expect_rel(s.items[1]["ROUGE-L"], 0.6240409207161125);
  expect_rel(s.items[2]["ROUGE-L"], 0.7721518987341772);
  expect_rel(s.items[0]["CIDEr-D"], 2.5460512340485337);
  expect_rel(s.items[1]["CIDEr-D"], 1.4035515188387884);
  expect_rel(s.items[2]["CIDEr-D"], 2.420252913793601);
}

TEST(CaptionMetrics, PredictionEqualToAReferenceScoresJustBelowOne) {
  const CaptionScores s = score_captions(
      {{"a", "A man rides a horse on the beach.", {"A man rides a horse on the beach.", "A person on a horse."}},
       {"b", "A red car parked on the street", {"a red car parked on the street.", "A car."}}});
  // The 1e-15 / 1e-9 smoothing keeps even a perfect corpus below 1, as in the toolkit.
  expect_bleu(s, {0.9999999998666668, 0.9999999998615385, 0.9999999998551672, 0.999999999846931});
  EXPECT_LT(s["BLEU-4"], 1.0);
  expect_bleu(s.items[0], {0.9999999997500004, 0.9999999997410718, 0.9999999997301591, 0.9999999997163694});
  EXPECT_DOUBLE_EQ(s["ROUGE-L"], 1.0);
  expect_rel(s.items[0]["CIDEr-D"], 5.615185872508443);
  expect_rel(s.items[1]["CIDEr-D"], 5.441655173661073);
  expect_rel(s["CIDEr-D"], 5.528420523084758);
}

TEST(CaptionMetrics, OneImageHasZeroCider) {
  const CaptionScores s =
      score_captions({{"only", "A dog runs on the grass", {"A dog is running on the grass.", "A dog runs!"}}});
  EXPECT_EQ(s["CIDEr-D"], 0.0);  // idf = log(1) - log(1) = 0 for every n-gram
  expect_bleu(s, {0.8464817246084536, 0.757116271161685, 0.6236930672719415, 9.0960380903795e-05});
  expect_rel(s["ROUGE-L"], 0.9242424242424241);
}

TEST(CaptionMetrics, EmptyPredictionAndUnseenWordsScoreZero) {
  const CaptionScores s = score_captions({{"empty", "", {"A dog is running.", "A dog runs fast."}},
                                          {"unseen", "Zebra xylophone quartz", {"A cat on a mat."}},
                                          {"good", "a dog runs", {"A dog runs.", "Dogs run fast."}}});
  for (int k = 1; k <= 4; ++k) EXPECT_EQ(s.items[0]["BLEU-" + std::to_string(k)], 0.0);
  EXPECT_EQ(s.items[0]["ROUGE-L"], 0.0);
  EXPECT_EQ(s.items[0]["CIDEr-D"], 0.0);
  expect_bleu(s.items[1], {1.711390395634381e-16, 2.0960166098273626e-16, 2.825443289636019e-16, 5.833544732589585e-14});
  EXPECT_EQ(s.items[1]["ROUGE-L"], 0.0);
  EXPECT_EQ(s.items[1]["CIDEr-D"], 0.0);
  expect_rel(s.items[2]["CIDEr-D"], 3.7499999999999996);
  expect_bleu(s, {0.183939720524408, 0.18393972051674384, 0.18393972049886087, 0.006917242819023028});
  expect_rel(s["ROUGE-L"], 1.0 / 3.0);
  expect_rel(s["CIDEr-D"], 1.2499999999999998);
}

TEST(CaptionMetrics, PunctuationCaseBracketsAndContractionsAreTokenisedFirst) {
  // "a dog 's ball is n't red -lrb- mostly -rrb-" vs "the dog 's ball is red" | "a ball";
  // "mr. smith ca n't go" vs "mr. smith can not go" | "a man stays".
  const CaptionScores s = score_captions(
      {{"p", "A dog's ball isn't red (mostly).", {"The dog's ball is red.", "A ball."}},
       {"q", "Mr. Smith can't go!", {"Mr. Smith cannot go.", "A man stays."}}});
  expect_bleu(s, {0.5999999999600001, 0.4296689243928118, 0.3225782389221726, 0.24712442543118376});
  expect_rel(s.items[0]["ROUGE-L"], 0.7093023255813954);
  expect_rel(s.items[1]["ROUGE-L"], 0.6);
  expect_rel(s.items[0]["CIDEr-D"], 1.8722619084223306);
  expect_rel(s.items[1]["CIDEr-D"], 1.0625);
}

TEST(CaptionMetrics, CaseAndPunctuationVariantsScoreAsIdentical) {
  const CaptionScores a = score_captions(main_corpus());
  std::vector<ScoredItem> shouted = main_corpus();
  shouted[0].prediction = "A DOG RUNS ON THE GRASS!!";  // "!!" is one token, not in the drop list
  shouted[1].prediction = "two people, ride bikes -- down a road ...";
  shouted[2].prediction = "\"a cat sits\"";
  const CaptionScores b = score_captions(shouted);
  // Only item 0 changes: "!!" survives tokenisation as a token of its own.
  EXPECT_NE(a.items[0]["CIDEr-D"], b.items[0]["CIDEr-D"]);
  EXPECT_DOUBLE_EQ(a.items[1]["CIDEr-D"], b.items[1]["CIDEr-D"]);
  EXPECT_DOUBLE_EQ(a.items[2]["CIDEr-D"], b.items[2]["CIDEr-D"]);
  EXPECT_DOUBLE_EQ(a.items[2]["ROUGE-L"], b.items[2]["ROUGE-L"]);
}

// The cases below are small enough to check with pencil and paper; the expected values are the
// toolkit's formulas written out (w = log 2 is the idf of an n-gram that one of two images has).
TEST(CaptionMetrics, HandCheckedCiderTwoImages) {
  // img1 "a" vs ["a"]: unigram cosine 1, higher orders have zero norms (skipped, 0), no bigram
  // difference: mean(1, 0, 0, 0) * 10 = 2.5. img2 "b" vs ["c"]: nothing shared: 0.
  const CaptionScores s = score_captions({{"1", "a", {"a"}}, {"2", "b", {"c"}}});
  expect_rel(s.items[0]["CIDEr-D"], 2.5);
  EXPECT_EQ(s.items[1]["CIDEr-D"], 0.0);
  expect_rel(s["CIDEr-D"], 1.25);
  expect_rel(s["ROUGE-L"], 0.5);
  // BLEU: 1 of 2 unigrams match, no bigram at all; c = r = 2 so the brevity penalty is the
  // smoothing's exp(1 - (2 + 1e-9) / (2 + 1e-15)).
  const double bp = std::exp(1 - (2 + 1e-9) / (2 + 1e-15));
  const double p1 = (1 + 1e-15) / (2 + 1e-9), p2 = 1e-15 / 1e-9;
  expect_rel(s["BLEU-1"], p1 * bp);
  expect_rel(s["BLEU-2"], std::sqrt(p1 * p2) * bp);
}

TEST(CaptionMetrics, HandCheckedCiderDividesByTheNumberOfReferences) {
  // img1 "a" vs ["a", "b"]: the "a" reference gives 1 for unigrams, "b" gives 0; summed over
  // references then divided by 2: mean(1, 0, 0, 0) / 2 * 10 = 1.25. img2 "c" vs ["c"]: 2.5.
  const CaptionScores s = score_captions({{"1", "a", {"a", "b"}}, {"2", "c", {"c"}}});
  expect_rel(s.items[0]["CIDEr-D"], 1.25);
  expect_rel(s.items[1]["CIDEr-D"], 2.5);
  expect_rel(s["CIDEr-D"], 1.875);
}

TEST(CaptionMetrics, HandCheckedCiderBigramLengthPenalty) {
  // "a b" vs ["a b c d"]: unigram cosine 2w^2 / (sqrt(2)w * 2w) = 1/sqrt(2), bigram w^2 / (w *
  // sqrt(3)w) = 1/sqrt(3), trigrams and 4-grams 0 (empty candidate vectors). The penalty uses the
  // BIGRAM counts (1 vs 3), not the lengths: exp(-(1 - 3)^2 / 72).
  const CaptionScores s = score_captions({{"1", "a b", {"a b c d"}}, {"2", "x", {"y"}}});
  const double want = (1 / std::sqrt(2.0) + 1 / std::sqrt(3.0)) / 4 * std::exp(-4.0 / 72.0) * 10;
  expect_rel(s.items[0]["CIDEr-D"], want);
  expect_rel(s["CIDEr-D"], want / 2);
  // ROUGE-L: LCS 2, P = 2/2, R = 2/4: (1 + 1.44) * 1 * 0.5 / (0.5 + 1.44 * 1).
  expect_rel(s.items[0]["ROUGE-L"], 2.44 * 0.5 / 1.94);
}

TEST(CaptionMetrics, ShortCaptionsGetTheSmoothedHigherOrderBleu) {
  // One image, "a b" vs ["a b"]: no 3- or 4-grams, so those precisions are 1e-15 / 1e-9 = 1e-6.
  const CaptionScores s = score_captions({{"1", "A b!", {"a B"}}});  // ("b." would be an abbreviation)
  const double p1 = (2 + 1e-15) / (2 + 1e-9), p2 = (1 + 1e-15) / (1 + 1e-9), p3 = 1e-6;
  expect_rel(s["BLEU-1"], p1);
  expect_rel(s["BLEU-2"], std::sqrt(p1 * p2));
  expect_rel(s["BLEU-3"], std::cbrt(p1 * p2 * p3));
  expect_rel(s["BLEU-4"], std::pow(p1 * p2 * p3 * p3, 0.25));
  EXPECT_DOUBLE_EQ(s["ROUGE-L"], 1.0);
  EXPECT_EQ(s["CIDEr-D"], 0.0);  // one image
}

TEST(CaptionMetrics, BritishAndAmericanSpellingsMatchAsInThe341Tokenizer) {
  // CoreNLP 3.4.1 respelled lower-case British words ("grey", "colour") before scoring, so these
  // score as identical; a capitalised "Grey" was left alone and does not match "gray".
  const CaptionScores same = score_captions({{"1", "a grey cat with colourful toys", {"A gray cat with colorful toys."}},
                                             {"2", "a dog", {"a dog"}}});
  expect_rel(same.items[0]["ROUGE-L"], 1.0);
  const CaptionScores capital = score_captions({{"1", "Grey cat", {"gray cat"}}, {"2", "a dog", {"a dog"}}});
  EXPECT_LT(capital.items[0]["ROUGE-L"], 1.0);
}

TEST(CaptionMetrics, RougeAndBleuScorersWorkOnTokenisedText) {
  EXPECT_DOUBLE_EQ(rouge_l("a b c", {"a b c"}), 1.0);
  EXPECT_EQ(rouge_l("", {"a b"}), 0.0);
  // An empty candidate against an empty reference: split(" ") gives one empty token each.
  EXPECT_DOUBLE_EQ(rouge_l("", {""}), 1.0);
  const BleuScores b = bleu_scores({""}, {{"a b"}});
  EXPECT_EQ(b.corpus[0], 0.0);
  EXPECT_EQ(cider_d_scores({"a b"}, {{"a b"}})[0], 0.0);
}

TEST(CaptionMetrics, ToolkitConventions) {
  EXPECT_EQ(split_python_whitespace("a  b\t c\xC2\xA0" "d "), (std::vector<std::string>{"a", "b", "c", "d"}));
  std::vector<double> v;
  for (int i = 0; i < 1000; ++i) v.push_back(0.1 * i);
  expect_rel(numpy_mean(v), 49.95, 1e-12);
}

TEST(CaptionMetrics, BadInputNamesTheItemAndTheProblem) {
  EXPECT_THROW(score_captions({}), Error);
  try {
    score_captions({{"img7", "a dog", {}}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("img7"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("no reference"), std::string::npos);
  }
  try {
    score_captions({{"x", "a", {"a"}}, {"x", "b", {"b"}}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("more than once"), std::string::npos);
  }
}

}  // namespace
}  // namespace clipcap
