#include "eval/metrics_summary.h"

#include <algorithm>

#include "common/strings.h"
#include "eval/clip_score.h"
#include "eval/html_report.h"

namespace clipcap {
namespace {

std::string fixed4(double v) { return format_number(v, "%.4f"); }

std::string pad(const std::string& s, size_t width) { return s.size() >= width ? s : s + std::string(width - s.size(), ' '); }

}  // namespace

nlohmann::json metric_values(const CaptionScores& scores, const ClipScoreResult* clip) {
  nlohmann::json m = nlohmann::json::object();
  const auto& names = caption_metric_names();
  for (size_t k = 0; k < names.size(); ++k) m[names[k]] = scores.corpus[k];
  if (clip) {
    m["CLIPScore"] = clip->clip_score;
    if (!clip->per_image_ref_clip_score.empty()) m["RefCLIPScore"] = clip->ref_clip_score;
  }
  return m;
}

nlohmann::json metric_counts(const std::vector<ScoredItem>& items) {
  int64_t refs = 0, empty = 0;
  for (const auto& it : items) {
    refs += static_cast<int64_t>(it.references.size());
    empty += it.prediction.find_first_not_of(" \t\r\n") == std::string::npos;
  }
  return {{"images", static_cast<int64_t>(items.size())}, {"references", refs}, {"empty_predictions", empty}};
}

std::string metrics_table(const nlohmann::json& metrics) {
  std::string out;
  for (const auto& name : report_metric_names())
    if (metrics.contains(name) && metrics[name].is_number())
      out += pad(name, 14) + fixed4(metrics[name].get<double>()) + "\n";
  return out;
}

std::string comparison_table(const std::vector<std::string>& names, const std::vector<nlohmann::json>& metrics) {
  std::vector<size_t> widths;
  for (const auto& n : names) widths.push_back(std::max<size_t>(n.size(), 8) + 2);
  std::string out = pad("metric", 14);
  for (size_t c = 0; c < names.size(); ++c) out += pad(names[c], widths[c]);
  out += "\n";
  for (const auto& name : report_metric_names()) {
    bool any = false;
    for (const auto& m : metrics) any = any || (m.contains(name) && m[name].is_number());
    if (!any) continue;
    out += pad(name, 14);
    for (size_t c = 0; c < metrics.size(); ++c)
      out += pad(metrics[c].contains(name) && metrics[c][name].is_number() ? fixed4(metrics[c][name].get<double>()) : "-",
                 widths[c]);
    out += "\n";
  }
  return out;
}

}  // namespace clipcap
