#include "eval/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/strings.h"

namespace clipcap {
namespace {

std::string num(double v) { return format_number(v, "%.6g"); }  // short, locale-free
std::string px(double v) { return format_number(v, "%.1f"); }

// Round tick step: 1, 2 or 5 times a power of ten, about `count` ticks over [lo, hi].
double nice_step(double lo, double hi, int count) {
  const double raw = (hi - lo) / std::max(1, count);
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (raw <= m * p) return m * p;
  return 10 * p;
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string render_svg(const LineChart& chart) {
  const double left = 56, right = 12, top = 28, bottom = 40;
  const double w = chart.width, h = chart.height;
  const double pw = w - left - right, ph = h - top - bottom;
  auto ty = [&](double y) { return chart.log_y ? (y > 0 ? std::log10(y) : std::nan("")) : y; };

  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : chart.series)
    for (const auto& [x, y] : s.points) {
      const double v = ty(y);
      if (!std::isfinite(x) || !std::isfinite(v)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, v), y1 = std::max(y1, v);
    }
  const bool has_data = std::isfinite(x0);
  if (!has_data) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x0 -= 1, x1 += 1;
  if (y1 == y0) y0 -= std::max(1e-12, std::fabs(y0) * 0.1), y1 += std::max(1e-12, std::fabs(y1) * 0.1);
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  auto sx = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto sy = [&](double v) { return top + (1 - (v - y0) / (y1 - y0)) * ph; };

  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" + num(w) + "\" height=\"" +
                    num(h) + "\" viewBox=\"0 0 " + num(w) + " " + num(h) + "\" role=\"img\" aria-label=\"" +
                    html_escape(chart.title) + "\">\n";
  svg += "<rect x=\"0\" y=\"0\" width=\"" + num(w) + "\" height=\"" + num(h) + "\" fill=\"#fff\"/>\n";
  svg += "<text x=\"" + px(w / 2) + "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-family=\"sans-serif\">" +
         html_escape(chart.title) + "</text>\n";
  // Grid and tick labels.
  const double ys = nice_step(y0, y1, 5);
  for (double v = std::ceil(y0 / ys) * ys; v <= y1 + 1e-12 * std::fabs(y1); v += ys) {
    const double y = sy(v);
    const std::string label = chart.log_y ? num(std::pow(10.0, v)) : num(std::fabs(v) < ys * 1e-9 ? 0.0 : v);
    svg += "<line x1=\"" + px(left) + "\" x2=\"" + px(left + pw) + "\" y1=\"" + px(y) + "\" y2=\"" + px(y) +
           "\" stroke=\"#e5e5e5\"/><text x=\"" + px(left - 6) + "\" y=\"" + px(y + 4) +
           "\" text-anchor=\"end\" font-size=\"11\" font-family=\"sans-serif\">" + html_escape(label) + "</text>\n";
  }
  const double xs = std::max(nice_step(x0, x1, 6), x1 - x0 >= 2 ? 1.0 : 0.0);
  for (double v = std::ceil(x0 / xs) * xs; v <= x1 + 1e-9; v += xs)
    svg += "<text x=\"" + px(sx(v)) + "\" y=\"" + px(top + ph + 16) +
           "\" text-anchor=\"middle\" font-size=\"11\" font-family=\"sans-serif\">" + html_escape(num(v)) + "</text>\n";
  svg += "<rect x=\"" + px(left) + "\" y=\"" + px(top) + "\" width=\"" + px(pw) + "\" height=\"" + px(ph) +
         "\" fill=\"none\" stroke=\"#888\"/>\n";
  svg += "<text x=\"" + px(left + pw / 2) + "\" y=\"" + px(h - 6) +
         "\" text-anchor=\"middle\" font-size=\"12\" font-family=\"sans-serif\">" + html_escape(chart.x_label) +
         "</text>\n";
  if (!chart.y_label.empty())
    svg += "<text transform=\"translate(12 " + px(top + ph / 2) +
           ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\" font-family=\"sans-serif\">" +
           html_escape(chart.y_label) + "</text>\n";
  // Series: polylines broken at gaps, a dot per point (single points stay visible), a legend.
  double legend_x = left + 8;
  for (const auto& s : chart.series) {
    std::string path;
    bool pen_down = false;
    std::string dots;
    for (const auto& [x, y] : s.points) {
      const double v = ty(y);
      if (!std::isfinite(x) || !std::isfinite(v)) {
        pen_down = false;
        continue;
      }
      path += (pen_down ? " L" : " M") + px(sx(x)) + " " + px(sy(v));
      pen_down = true;
      dots += "<circle cx=\"" + px(sx(x)) + "\" cy=\"" + px(sy(v)) + "\" r=\"2.5\" fill=\"" + html_escape(s.color) + "\"/>";
    }
    if (!path.empty())
      svg += "<path class=\"series\" data-series=\"" + html_escape(s.name) + "\" d=\"" + path.substr(1) +
             "\" fill=\"none\" stroke=\"" + html_escape(s.color) + "\" stroke-width=\"2\"/>" + dots + "\n";
    svg += "<rect x=\"" + px(legend_x) + "\" y=\"" + px(top + 6) + "\" width=\"10\" height=\"10\" fill=\"" +
           html_escape(s.color) + "\"/><text x=\"" + px(legend_x + 14) + "\" y=\"" + px(top + 15) +
           "\" font-size=\"11\" font-family=\"sans-serif\">" + html_escape(s.name) + "</text>\n";
    legend_x += 24 + 7.0 * static_cast<double>(s.name.size());
  }
  if (!has_data)
    svg += "<text x=\"" + px(left + pw / 2) + "\" y=\"" + px(top + ph / 2) +
           "\" text-anchor=\"middle\" font-size=\"12\" fill=\"#888\" font-family=\"sans-serif\">no data</text>\n";
  svg += "</svg>";
  return svg;
}

}  // namespace clipcap
