// Caption metrics computed exactly as the COCO caption toolkit (pycocoevalcap) computes them.
//
//   std::vector<clipcap::ScoredItem> items = {
//       {"img1", "A dog runs on the grass.", {"A dog running on grass.", "A brown dog runs."}},
//       {"img2", "Two people ride bikes.", {"Two cyclists on a road."}}};
//   clipcap::CaptionScores s = clipcap::score_captions(items);
//   // s.bleu[3] = BLEU-4, s.rouge_l, s.cider_d (corpus); s.items[k] per image
//
// Predictions and references are PTB-tokenised as two batches (eval/ptb_tokenizer.h), then
// scored by BLEU-1..4 (eval/bleu.h), ROUGE-L (eval/rouge.h) and CIDEr-D (eval/cider.h). The
// numbers are comparable with published COCO-style results only because every step, quirks
// included, is the toolkit's.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace clipcap {

struct ScoredItem {
  std::string id;                       // image or video id; must be unique
  std::string prediction;               // raw caption, tokenised here
  std::vector<std::string> references;  // raw captions, at least one
};

struct ItemScores {
  std::string id;
  std::array<double, 4> bleu{};  // the toolkit's per-image BLEU-1..4 lists
  double rouge_l = 0;
  double cider_d = 0;
};

struct CaptionScores {
  std::array<double, 4> bleu{};  // corpus BLEU-1..4
  double rouge_l = 0;            // mean over images
  double cider_d = 0;            // mean over images
  std::vector<ItemScores> items;  // in the order of the input
};

// Throws clipcap::Error for no items, an item without references, or a repeated id (the toolkit
// asserts on the last two).
CaptionScores score_captions(const std::vector<ScoredItem>& items);

// ---- toolkit conventions shared by the metric files ----

// Python's str.split(): split on runs of Unicode whitespace (including U+00A0), no empty parts.
std::vector<std::string> split_python_whitespace(std::string_view text);

// numpy.mean of a float64 array, with numpy's pairwise summation (so means agree to the bit).
double numpy_mean(const std::vector<double>& values);

}  // namespace clipcap
