#include "eval/html_report.h"

#include <cmath>

#include "common/strings.h"
#include "eval/caption_metrics.h"
#include "eval/svg_chart.h"

namespace clipcap {
namespace {

std::string fmt(double v, const char* f = "%.4f") { return format_number(v, f); }

std::string json_text(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

const char* kStyle = R"(
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; background: #fafafa; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
table.metrics { border-collapse: collapse; } table.metrics td, table.metrics th { padding: 4px 12px; border: 1px solid #ddd; }
table.metrics td.v { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 14px; }
figure { margin: 0; padding: 8px; background: #fff; border: 1px solid #ddd; border-radius: 4px; }
figure img { width: 100%; height: 200px; object-fit: contain; display: block; margin: 0 auto 6px; image-rendering: pixelated; }
figure .missing { height: 80px; display: flex; align-items: center; justify-content: center; color: #999; background: #eee; margin-bottom: 6px; }
.pred { font-weight: 600; overflow-wrap: anywhere; } .refs { color: #555; font-size: 13px; padding-left: 18px; margin: 4px 0; overflow-wrap: anywhere; }
.name { color: #888; font-size: 12px; word-break: break-all; } .score { font-size: 12px; color: #333; }
pre { background: #fff; border: 1px solid #ddd; padding: 10px; overflow-x: auto; font-size: 12px; }
#load-errors { background: #fee; border: 1px solid #c00; padding: 8px; white-space: pre-wrap; }
)";

// Records failed images and script errors, then publishes the counts on <html> (see header).
const char* kCheckScript = R"(
(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    var t = e.target;
    if (t && t.tagName === 'IMG') errors.push('image failed to load: ' + t.getAttribute('src'));
    else errors.push('script error: ' + e.message);
  }, true);
  window.addEventListener('load', function () {
    var imgs = document.images, ok = 0;
    for (var i = 0; i < imgs.length; ++i) if (imgs[i].complete && imgs[i].naturalWidth > 0) ++ok;
    document.documentElement.setAttribute('data-images', ok + '/' + imgs.length);
    document.documentElement.setAttribute('data-errors', String(errors.length));
    if (errors.length) {
      var box = document.getElementById('load-errors');
      box.textContent = errors.join('\n');
      box.hidden = false;
    }
  });
})();
)";

std::string figure(const ReportItem& it) {
  std::string h = "<figure>";
  if (!it.src.empty())
    h += "<img src=\"" + html_escape(it.src) + "\" alt=\"" + html_escape(it.image) + "\">";
  else
    h += "<div class=\"missing\">image not available</div>";
  h += "<figcaption><div class=\"pred\">" + html_escape(it.prediction.empty() ? "(empty caption)" : it.prediction) +
       "</div><ul class=\"refs\">";
  for (const auto& r : it.references) h += "<li>" + html_escape(r) + "</li>";
  h += "</ul><div class=\"score\">";
  for (const char* k : {"CIDEr-D", "BLEU-4", "ROUGE-L", "CLIPScore"})
    if (it.scores.contains(k) && it.scores[k].is_number())
      h += html_escape(k) + " " + fmt(it.scores[k].get<double>(), "%.3f") + " &nbsp; ";
  h += "</div><div class=\"name\">" + html_escape(it.image) + "</div></figcaption></figure>\n";
  return h;
}

std::string section_grid(const std::string& title, const std::vector<ReportItem>& items) {
  if (items.empty()) return "";
  std::string h = "<h2>" + html_escape(title) + "</h2>\n<div class=\"grid\">\n";
  for (const auto& it : items) h += figure(it);
  return h + "</div>\n";
}

std::string curves(const TrainingLog& log) {
  if (log.epochs.empty()) return "";
  LineChart loss;
  loss.title = "loss";
  loss.x_label = "epoch";
  ChartSeries train{"train loss", "#1f77b4", {}}, val{"val loss", "#d62728", {}};
  LineChart lr;
  lr.title = "learning rate";
  lr.x_label = "epoch";
  ChartSeries lrs{"lr", "#2ca02c", {}};
  bool any_val = false;
  for (const auto& e : log.epochs) {
    const auto x = static_cast<double>(e.epoch);
    train.points.emplace_back(x, e.train_loss);
    val.points.emplace_back(x, e.val_loss);
    lrs.points.emplace_back(x, e.lr);
    any_val = any_val || std::isfinite(e.val_loss);
  }
  loss.series.push_back(train);
  if (any_val) loss.series.push_back(val);
  lr.series.push_back(lrs);
  return "<h2>Training curves</h2>\n<p class=\"name\">from " + html_escape(log.run_dir) +
         "/metrics.jsonl</p>\n<div class=\"charts\">\n" + render_svg(loss) + "\n" + render_svg(lr) + "\n</div>\n";
}

}  // namespace

const std::vector<std::string>& report_metric_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n = caption_metric_names();
    n.insert(n.end(), {"CLIPScore", "RefCLIPScore"});
    return n;
  }();
  return names;
}

std::string render_report_html(const ReportInput& in) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
                  html_escape(in.title) + "</title>\n<style>" + kStyle + "</style>\n<script>" + kCheckScript +
                  "</script>\n</head>\n<body>\n";
  h += "<h1>" + html_escape(in.title) + "</h1>\n<div id=\"load-errors\" hidden></div>\n";

  h += "<h2>Metrics</h2>\n<table class=\"metrics\">\n<tr><th>metric</th><th>value</th></tr>\n";
  const nlohmann::json& m = in.metrics.contains("metrics") ? in.metrics["metrics"] : nlohmann::json::object();
  for (const auto& name : report_metric_names())
    if (m.contains(name) && m[name].is_number())
      h += "<tr><td>" + html_escape(name) + "</td><td class=\"v\">" + fmt(m[name].get<double>()) + "</td></tr>\n";
  h += "</table>\n";
  if (in.metrics.contains("counts")) {
    h += "<p class=\"score\">";
    for (const auto& [k, v] : in.metrics["counts"].items())
      h += html_escape(k) + ": " + html_escape(v.is_string() ? v.get<std::string>() : v.dump()) + " &nbsp; ";
    h += "</p>\n";
  }
  h += "<p class=\"name\">BLEU, ROUGE-L and CIDEr-D as the COCO caption toolkit computes them (PTB tokenisation, "
       "corpus BLEU, CIDEr-D with idf over these references); CLIPScore as Hessel et al. 2021.</p>\n";

  h += curves(in.training);
  h += section_grid("Best images by CIDEr-D", in.best);
  h += section_grid("Worst images by CIDEr-D", in.worst);
  h += section_grid("Images", in.grid);

  h += "<h2>Configuration</h2>\n";
  if (!in.settings.is_null()) h += "<h3>Evaluation</h3>\n<pre>" + html_escape(json_text(in.settings)) + "</pre>\n";
  if (!in.training.train_config.is_null())
    h += "<h3>Training (" + html_escape(in.training.run_dir) + "/train_config.json)</h3>\n<pre>" +
         html_escape(json_text(in.training.train_config)) + "</pre>\n";
  h += "</body>\n</html>\n";
  return h;
}

}  // namespace clipcap
