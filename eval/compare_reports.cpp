#include "eval/compare_reports.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "common/error.h"
#include "common/json_util.h"
#include "common/strings.h"
#include "eval/html_report.h"
#include "eval/metrics_summary.h"
#include "eval/svg_chart.h"

namespace clipcap {
namespace fs = std::filesystem;

std::vector<ComparedRun> load_reports(const std::vector<std::string>& dirs) {
  if (dirs.empty()) throw Error("compare: no report directories given");
  std::vector<ComparedRun> runs;
  std::map<std::string, int> seen;
  for (const std::string& dir : dirs) {
    const std::string path = (fs::path(dir) / "metrics.json").string();
    if (!fs::exists(path)) throw Error(dir + ": no metrics.json (not a clipcap-eval report directory)");
    ComparedRun r;
    r.dir = dir;
    r.metrics = read_json(path);
    if (!r.metrics.is_object() || !r.metrics.contains("metrics") || !r.metrics["metrics"].is_object())
      throw Error(path + ": missing field 'metrics'");
    fs::path p(dir);
    if (p.filename().empty()) p = p.parent_path();
    r.name = p.filename().string();
    ++seen[r.name];
    runs.push_back(std::move(r));
  }
  for (auto& r : runs)
    if (seen[r.name] > 1) r.name = r.dir;
  return runs;
}

std::string comparison_text(const std::vector<ComparedRun>& runs) {
  std::vector<std::string> names;
  std::vector<nlohmann::json> metrics;
  for (const auto& r : runs) names.push_back(r.name), metrics.push_back(r.metrics["metrics"]);
  std::string text = comparison_table(names, metrics) + "\ncaptioned by:\n";
  for (const auto& r : runs) text += "  " + r.name + ": " + captioner_label(r.metrics) + "\n";
  return text;
}

void refuse_to_overwrite_reports(const std::string& path, const std::vector<std::string>& dirs) {
  std::error_code ec;
  const fs::path target = fs::weakly_canonical(fs::absolute(path), ec);
  for (const std::string& dir : dirs) {
    const fs::path d = fs::weakly_canonical(fs::absolute(dir), ec);
    const fs::path rel = target.lexically_relative(d);
    if (!rel.empty() && *rel.begin() != ".." && rel != ".")
      throw Error(path + ": --html would write inside the report " + dir +
                  " (an input of the comparison); give a path outside the report directories");
  }
}

std::string captioner_label(const nlohmann::json& metrics) {
  const nlohmann::json m = metrics.value("model", nlohmann::json());
  if (!m.is_object()) return "?";
  const std::string backend = m.value("backend", "local");
  if (backend == "openai")
    return "openai " + m.value("name", std::string("?")) + " at " + m.value("endpoint", std::string("?"));
  return backend + " " + m.value("dir", m.value("name", std::string("?")));
}

std::string comparison_html(const std::vector<ComparedRun>& runs) {
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>clipcap-eval compare</title>\n"
      "<style>body{font-family:system-ui,sans-serif;margin:24px}table{border-collapse:collapse}"
      "td,th{padding:4px 12px;border:1px solid #ddd}td.v{text-align:right;font-variant-numeric:tabular-nums}"
      "pre{background:#f6f6f6;padding:8px;font-size:12px}</style>\n</head>\n<body>\n<h1>clipcap-eval: comparison</h1>\n"
      "<table>\n<tr><th>metric</th>";
  for (const auto& r : runs) h += "<th>" + html_escape(r.name) + "</th>";
  h += "</tr>\n<tr><td>captioned by</td>";
  for (const auto& r : runs) h += "<td>" + html_escape(captioner_label(r.metrics)) + "</td>";
  h += "</tr>\n";
  for (const auto& name : report_metric_names()) {
    double best = -1e300;
    bool any = false;
    for (const auto& r : runs)
      if (r.metrics["metrics"].contains(name) && r.metrics["metrics"][name].is_number())
        any = true, best = std::max(best, r.metrics["metrics"][name].get<double>());
    if (!any) continue;
    h += "<tr><td>" + html_escape(name) + "</td>";
    for (const auto& r : runs) {
      const auto& m = r.metrics["metrics"];
      if (!m.contains(name) || !m[name].is_number()) {
        h += "<td class=\"v\">-</td>";
        continue;
      }
      const std::string buf = format_number(m[name].get<double>(), "%.4f");
      const bool top = m[name].get<double>() == best && runs.size() > 1;
      h += std::string("<td class=\"v\">") + (top ? "<b>" : "") + buf + (top ? "</b>" : "") + "</td>";
    }
    h += "</tr>\n";
  }
  h += "</table>\n";
  for (const auto& r : runs) {
    nlohmann::json about = r.metrics;
    about.erase("metrics");
    h += "<h2>" + html_escape(r.name) + "</h2>\n<p>" + html_escape(r.dir) + "</p>\n<pre>" +
         html_escape(about.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)) + "</pre>\n";
  }
  return h + "</body>\n</html>\n";
}

}  // namespace clipcap
