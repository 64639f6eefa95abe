// `clipcap-eval compare`: the metrics of several report directories side by side.
//
//   auto runs = clipcap::load_reports({"reports/small", "reports/large"});
//   std::cout << clipcap::comparison_text(runs);                 // one row per metric
//   write_file_atomic("compare.html", clipcap::comparison_html(runs));
//
// Each directory must hold the metrics.json clipcap-eval (or clipcap-eval score) wrote; runs are
// named by the directory's basename (the full path when two basenames are equal).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clipcap {

struct ComparedRun {
  std::string name, dir;
  nlohmann::json metrics;  // metrics.json as written
};

std::vector<ComparedRun> load_reports(const std::vector<std::string>& dirs);
// The metric table, then what captioned each run ("local <model dir>", "openai <model> at <endpoint>").
std::string comparison_text(const std::vector<ComparedRun>& runs);
// Error when `path` is one of the reports' own files (the comparison would overwrite an input):
// any file inside one of the report directories.
void refuse_to_overwrite_reports(const std::string& path, const std::vector<std::string>& dirs);

// A report's metrics.json "model" as one line: the local model's directory or the remote endpoint.
std::string captioner_label(const nlohmann::json& metrics);
// One self-contained page: the table (best value per metric in bold), then each run's model,
// data, decoding and counts.
std::string comparison_html(const std::vector<ComparedRun>& runs);

}  // namespace clipcap
