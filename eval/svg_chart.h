// Small line charts as inline SVG, for the evaluation report (no script, no external file).
//
//   clipcap::LineChart c;  c.title = "loss";  c.x_label = "epoch";
//   c.series.push_back({"train", "#1f77b4", {{1, 2.3}, {2, 1.9}}});
//   std::string svg = clipcap::render_svg(c);   // "<svg ...>...</svg>"
//
// Points with a non-finite y are gaps (e.g. epochs without validation). Axes span the data with
// a little margin; ticks are "nice" round numbers. All text is XML-escaped.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace clipcap {

struct ChartSeries {
  std::string name;
  std::string color;                             // any CSS colour
  std::vector<std::pair<double, double>> points;  // (x, y), in x order
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<ChartSeries> series;
  int width = 480, height = 280;  // pixels
  bool log_y = false;             // log10 y axis (learning rates); non-positive values are gaps
};

std::string render_svg(const LineChart& chart);

// &, <, >, " and ' as entities: for HTML text and attribute values.
std::string html_escape(const std::string& text);

}  // namespace clipcap
