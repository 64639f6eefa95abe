// CIDEr-D as pycocoevalcap's Cider computes it (cider_scorer.py: n = 4, sigma = 6, x10).
//
//   std::vector<double> c = clipcap::cider_d_scores(predictions, references);  // per image
//
// Input is tokenised text. n-grams (n = 1..4) get tf-idf weights with raw counts; the document
// frequency of an n-gram is the number of images whose reference set contains it, over the
// images scored here only, idf = log(#images) - log(max(1, df)) (one image: all weights 0).
// Per n: sum over candidate n-grams of min(h, r) * r, divided by |h| |r| unless a norm is 0,
// times exp(-delta^2 / 72) where delta is the difference of the candidates' BIGRAM counts (the
// toolkit's "length"); averaged over n, over references, times 10. Corpus = mean over images.
#pragma once

#include <string>
#include <vector>

namespace clipcap {

std::vector<double> cider_d_scores(const std::vector<std::string>& predictions,
                                   const std::vector<std::vector<std::string>>& references);

}  // namespace clipcap
