// Caption metrics computed exactly as the COCO caption toolkit (pycocoevalcap) computes them.
//
//   std::vector<clipcap::ScoredItem> items = {
//       {"img1", "A dog runs on the grass.", {"A dog running on grass.", "A brown dog runs."}},
//       {"img2", "Two people ride bikes.", {"Two cyclists on a road."}}};
//   clipcap::CaptionScores s = clipcap::score_captions(items);
//   s["BLEU-4"], s["ROUGE-L"], s["CIDEr-D"];      // corpus values
//   s.items[k]["CIDEr-D"];                         // image k's
//
// Predictions and references are PTB-tokenised as two batches (eval/ptb_tokenizer.h), then
// scored by every metric of caption_metrics(): BLEU-1..4 (eval/bleu.h), ROUGE-L (eval/rouge.h)
// and CIDEr-D (eval/cider.h). A new metric is a scoring function and one row of that table; the
// JSON, the reports and the tables take their names from it. The numbers are comparable with
// published COCO-style results only because every step, quirks included, is the toolkit's.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clipcap {

struct ScoredItem {
  std::string id;                       // image or video id; must be unique
  std::string prediction;               // raw caption, tokenised here
  std::vector<std::string> references;  // raw captions, at least one
};

// A metric (or a family: BLEU gives BLEU-1..4) over PTB-tokenised predictions[i] and their
// references[i]: one corpus value per name, and per_item[i] with one value per name.
struct CaptionMetric {
  std::vector<std::string> names;
  void (*score)(const std::vector<std::string>& predictions, const std::vector<std::vector<std::string>>& references,
                std::vector<double>& corpus, std::vector<std::vector<double>>& per_item);
};

// Every metric, in report order: the one place a metric is registered.
const std::vector<CaptionMetric>& caption_metrics();
// Their names, in that order: "BLEU-1", ..., "BLEU-4", "ROUGE-L", "CIDEr-D".
const std::vector<std::string>& caption_metric_names();

struct ItemScores {
  std::string id;
  std::vector<double> values;  // one per caption_metric_names()
  double operator[](const std::string& metric) const;
};

struct CaptionScores {
  std::vector<double> corpus;     // one per caption_metric_names() (BLEU: corpus; the others: mean over images)
  std::vector<ItemScores> items;  // in the order of the input
  double operator[](const std::string& metric) const;
};

// Index of a metric in caption_metric_names(); Error for an unknown name.
size_t caption_metric_index(const std::string& name);

// Throws clipcap::Error for no items, an item without references, or a repeated id (the toolkit
// asserts on the last two).
CaptionScores score_captions(const std::vector<ScoredItem>& items);

// ---- toolkit conventions shared by the metric files ----

// Python's str.split(): split on runs of Unicode whitespace (including U+00A0), no empty parts.
std::vector<std::string> split_python_whitespace(std::string_view text);

// numpy.mean of a float64 array, with numpy's pairwise summation (so means agree to the bit).
double numpy_mean(const std::vector<double>& values);

}  // namespace clipcap
