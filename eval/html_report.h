// The evaluation report: ONE self-contained HTML page (inline CSS and SVG, images referenced
// relative to the page), so the report directory alone is enough to read it anywhere.
//
//   clipcap::ReportInput in;  in.title = "best on flickr30k test";  in.metrics = metrics_json;
//   in.grid = {...};  in.best = {...};  in.worst = {...};  in.training = read_training_log(run);
//   write_file_atomic(out + "/report.html", clipcap::render_report_html(in));
//
// Sections: metric table; training curves (train/val loss and learning rate per epoch, inline
// SVG) when a training log is given; best and worst images by per-image CIDEr-D; a grid of
// images with prediction and references; the run's training configuration and the evaluation
// settings. Every piece of text is HTML-escaped. A small inline script records images that fail
// to load and script errors: it shows them at the top of the page and sets
// <html data-images="loaded/total" data-errors="N"> once the page has loaded (the report test
// reads these from a headless browser's DOM).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/training_log.h"

namespace clipcap {

struct ReportItem {
  std::string image;   // the image's name (relative path in the dataset, or an id)
  std::string src;     // image URL relative to report.html ("images/0003.jpg"); "" = not available
  std::string prediction;
  std::vector<std::string> references;
  nlohmann::json scores;  // {"CIDEr-D": ..., "BLEU-4": ..., ...}
};

struct ReportInput {
  std::string title;
  nlohmann::json metrics;             // metrics.json as written (its "metrics", "counts", ... keys)
  std::vector<ReportItem> grid;       // the image grid
  std::vector<ReportItem> best, worst;
  TrainingLog training;               // empty: no curves, no training configuration
  nlohmann::json settings;            // evaluation settings shown at the end (model, data, decoding)
};

std::string render_report_html(const ReportInput& in);

// The metric names in report order; those present in metrics["metrics"] are shown.
const std::vector<std::string>& report_metric_names();

}  // namespace clipcap
