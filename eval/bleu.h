// BLEU-1..4 as pycocoevalcap's Bleu(4) computes it (bleu_scorer.py, option "closest").
//
//   clipcap::BleuScores b = clipcap::bleu_scores({"a dog runs"}, {{"a dog runs", "the dog ran"}});
//   // b.corpus[3] = BLEU-4 = 0.99999999989...; b.per_item[0][3] the per-image value
//
// Input is already tokenised text (tokens separated by whitespace, as coco_tokenize gives).
// Corpus BLEU sums clipped n-gram matches and candidate n-gram counts over all images; the
// reference length per image is the one closest to the candidate's (ties to the shorter);
// BLEU_n = (prod_{k<=n} (match_k + 1e-15) / (total_k + 1e-9))^(1/n), times exp(1 - 1/ratio)
// when ratio = (c + 1e-15) / (r + 1e-9) < 1 (so even a perfect corpus gets slightly below 1).
// The per-image values use the same formula on that image's counts alone.
#pragma once

#include <array>
#include <string>
#include <vector>

namespace clipcap {

struct BleuScores {
  std::array<double, 4> corpus{};
  std::vector<std::array<double, 4>> per_item;
};

// predictions[i] is scored against references[i] (at least one each).
BleuScores bleu_scores(const std::vector<std::string>& predictions,
                       const std::vector<std::vector<std::string>>& references);

}  // namespace clipcap
