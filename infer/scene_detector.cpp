#include "infer/scene_detector.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"

namespace clipcap {
namespace {

cv::Mat wrap(const Image& img) {
  return cv::Mat(static_cast<int>(img.height), static_cast<int>(img.width), CV_8UC3,
                 const_cast<uint8_t*>(img.pixels.data()));
}

}  // namespace

void SceneDetectOptions::validate() const {
  if (!(threshold > 0)) throw Error("--scene-threshold must be > 0, got " + std::to_string(threshold));
  if (!(min_scene_len_s >= 0)) throw Error("--min-scene-len must be >= 0 seconds, got " + std::to_string(min_scene_len_s));
  if (analysis_long_side < 8) throw Error("scene analysis size must be >= 8 pixels");
}

Image rgb_to_hsv(const Image& rgb) {
  Image hsv;
  hsv.width = rgb.width;
  hsv.height = rgb.height;
  hsv.pixels.resize(rgb.pixels.size());
  cv::Mat out = wrap(hsv);
  cv::cvtColor(wrap(rgb), out, cv::COLOR_RGB2HSV);
  return hsv;
}

double content_score(const Image& hsv_a, const Image& hsv_b) {
  if (hsv_a.width != hsv_b.width || hsv_a.height != hsv_b.height || hsv_a.pixels.empty())
    throw Error("scene detection: frames of different sizes");
  return cv::norm(wrap(hsv_a), wrap(hsv_b), cv::NORM_L1) / static_cast<double>(hsv_a.pixels.size());
}

std::pair<int64_t, int64_t> analysis_size(int64_t width, int64_t height, int long_side) {
  const int64_t longest = std::max(width, height);
  if (longest <= long_side) return {std::max<int64_t>(1, width), std::max<int64_t>(1, height)};
  const double f = static_cast<double>(long_side) / static_cast<double>(longest);
  return {std::max<int64_t>(1, std::lround(width * f)), std::max<int64_t>(1, std::lround(height * f))};
}

SceneDetector::SceneDetector(SceneDetectOptions opts) : opts_(opts) { opts_.validate(); }

bool SceneDetector::add_frame(const Image& small_rgb, double pts_s) {
  Image hsv = rgb_to_hsv(small_rgb);
  bool cut = times_.empty();
  double score = 0;
  if (!times_.empty()) {
    score = content_score(prev_hsv_, hsv);
    const double scene_start = times_[starts_.back()];
    cut = score >= opts_.threshold && pts_s - scene_start >= opts_.min_scene_len_s - 1e-9;
  }
  if (cut) starts_.push_back(times_.size());
  times_.push_back(pts_s);
  scores_.push_back(score);
  prev_hsv_ = std::move(hsv);
  return cut;
}

}  // namespace clipcap
