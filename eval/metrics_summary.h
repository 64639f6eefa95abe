// The numbers clipcap-eval reports, as JSON and as a text table.
//
//   nlohmann::json m = clipcap::metric_values(scores, clip);   // {"BLEU-1": ..., ..., "CIDEr-D": ...}
//   std::cout << clipcap::metrics_table(m);                     // "BLEU-1    0.7123\n..."
//   std::cout << clipcap::comparison_table({"run-a", "run-b"}, {ma, mb});
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/caption_metrics.h"

namespace clipcap {

struct ClipScoreResult;

// Every caption metric (corpus values), plus CLIPScore / RefCLIPScore when clip is given.
nlohmann::json metric_values(const CaptionScores& scores, const ClipScoreResult* clip);

// {"images", "references", "empty_predictions"} of what was scored.
nlohmann::json metric_counts(const std::vector<ScoredItem>& items);

// One "name  value" line per metric present, in report order, 4 decimals.
std::string metrics_table(const nlohmann::json& metrics);

// One row per metric, one column per run ("-" where a run lacks the metric).
std::string comparison_table(const std::vector<std::string>& names, const std::vector<nlohmann::json>& metrics);

}  // namespace clipcap
