// Predictions with their references: what `clipcap-eval score` reads and `clipcap-eval` writes.
//
//   std::vector<clipcap::PredictionRecord> r = clipcap::read_predictions_jsonl("predictions.jsonl");
//   std::vector<clipcap::PredictionRecord> c =
//       clipcap::read_coco_results("coco_results.json", "captions_val2014.json");
//   clipcap::CaptionScores s = clipcap::score_captions(clipcap::scored_items(r));
//   clipcap::write_predictions_jsonl("out/predictions.jsonl", r, s, nullptr);
//
// JSONL: one object per line, {"image": ..., "prediction": ..., "references": [...]} ("references"
// may be a single string; other keys, e.g. the per-image scores this file's writer adds, are
// ignored). Blank lines are skipped. Images must be unique.
// COCO (pycocoevalcap's COCOEvalCap): results [{"image_id", "caption"}], one caption per image;
// annotations {"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}. The
// images scored are those of the results, in the annotation file's image order, each with all its
// annotated captions as references. `image` is the file_name when the annotations give one.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/caption_metrics.h"

namespace clipcap {

struct ClipScoreResult;

struct PredictionRecord {
  std::string image;                    // path relative to the images root, or an id
  std::string prediction;
  std::vector<std::string> references;
  nlohmann::json rerank;  // the reranked caption's scores (backend/caption_backend.h rerank_json), or null
};

// Errors name the file and line ("preds.jsonl:7: ...") or the entry.
std::vector<PredictionRecord> read_predictions_jsonl(const std::string& path);
std::vector<PredictionRecord> read_coco_results(const std::string& results_path, const std::string& annotations_path);

std::vector<ScoredItem> scored_items(const std::vector<PredictionRecord>& records);

// One line per record: image, prediction, references and "scores" {BLEU-1..4, ROUGE-L, CIDEr-D,
// and CLIPScore / RefCLIPScore when clip is given}. Written atomically.
void write_predictions_jsonl(const std::string& path, const std::vector<PredictionRecord>& records,
                             const CaptionScores& scores, const ClipScoreResult* clip);

}  // namespace clipcap
