#include "image/caption_render.h"

#include <algorithm>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "common/error.h"

namespace clipcap {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;

// Hershey fonts draw ASCII only: one '?' per non-ASCII code point, control characters as spaces.
std::string printable_ascii(const std::string& text) {
  std::string out;
  for (char ch : text) {
    const auto b = static_cast<unsigned char>(ch);
    if (b >= 0x80 && b < 0xC0) continue;  // UTF-8 continuation byte: its lead byte made the '?'
    out.push_back(b >= 0x80 ? '?' : b < 0x20 || b == 0x7F ? ' ' : ch);
  }
  return out;
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::string cur;
  for (char ch : text) {
    if (ch == ' ') {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(ch);
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

struct Font {
  double scale = 1;
  int thickness = 1;
  int width(const std::string& s) const {
    int baseline = 0;
    return cv::getTextSize(s, kFont, scale, thickness, &baseline).width;
  }
};

// Greedy wrapping; a word wider than a whole line is cut between characters.
std::vector<std::string> wrap(const std::string& text, const Font& font, int max_width) {
  std::vector<std::string> lines;
  std::string line;
  for (std::string word : split_words(text)) {
    const std::string joined = line.empty() ? word : line + ' ' + word;
    if (font.width(joined) <= max_width) {
      line = joined;
      continue;
    }
    if (!line.empty()) lines.push_back(line);
    line.clear();
    while (font.width(word) > max_width && word.size() > 1) {
      size_t n = 1;
      while (n < word.size() && font.width(word.substr(0, n + 1)) <= max_width) ++n;
      lines.push_back(word.substr(0, n));
      word.erase(0, n);
    }
    line = word;
  }
  if (!line.empty() || lines.empty()) lines.push_back(line);
  return lines;
}

cv::Mat upscaled(const Image& image, int min_width) {
  cv::Mat src(static_cast<int>(image.height), static_cast<int>(image.width), CV_8UC3,
              const_cast<uint8_t*>(image.pixels.data()));
  if (image.width >= min_width) return src.clone();
  const double factor = static_cast<double>(min_width) / static_cast<double>(image.width);
  const int h = std::max(1, static_cast<int>(std::lround(static_cast<double>(image.height) * factor)));
  cv::Mat dst;
  cv::resize(src, dst, cv::Size(min_width, h), 0, 0, factor >= 4 ? cv::INTER_NEAREST : cv::INTER_LINEAR);
  return dst;
}

}  // namespace

Image render_caption(const Image& image, const std::string& caption, const CaptionRenderOptions& options) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width * image.height * 3))
    throw Error("render_caption: image of " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                " with " + std::to_string(image.pixels.size()) + " bytes: not an RGB image");
  const cv::Mat top = upscaled(image, std::max(1, options.min_width));
  const int width = top.cols;

  const int text_height = std::max(options.min_text_height,
                                   static_cast<int>(std::lround(width * options.text_height_ratio)));
  Font font;
  font.thickness = std::max(1, static_cast<int>(std::lround(text_height / 14.0)));
  int baseline = 0;
  const int unit_height = cv::getTextSize("H", kFont, 1.0, font.thickness, &baseline).height;
  font.scale = static_cast<double>(text_height) / unit_height;

  const int margin = std::max(4, text_height * 3 / 4);
  const int line_step = text_height * 9 / 5;  // cap height + room for descenders and leading
  const std::vector<std::string> lines = wrap(printable_ascii(caption), font, width - 2 * margin);
  const int descent = text_height / 2 + font.thickness;
  const int band_height = 2 * margin + text_height + static_cast<int>(lines.size() - 1) * line_step + descent;

  cv::Mat out(top.rows + band_height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  top.copyTo(out(cv::Rect(0, 0, width, top.rows)));
  for (size_t i = 0; i < lines.size(); ++i) {
    const int x = std::max(margin, (width - font.width(lines[i])) / 2);  // centred
    const int y = top.rows + margin + text_height + static_cast<int>(i) * line_step;
    cv::putText(out, lines[i], cv::Point(x, y), kFont, font.scale, cv::Scalar(0, 0, 0), font.thickness, cv::LINE_AA);
  }

  Image result;
  result.width = out.cols;
  result.height = out.rows;
  result.pixels.assign(out.data, out.data + out.total() * 3);  // `out` is continuous: freshly allocated
  return result;
}

}  // namespace clipcap
