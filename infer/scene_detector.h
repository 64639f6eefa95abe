// Scene cuts from frame differences, modelled on PySceneDetect's ContentDetector: each frame is
// shrunk, converted to HSV (OpenCV's 8-bit HSV, H in 0..179), and its score is the mean absolute
// difference from the previous frame over all pixels and the three channels (0..255). A frame
// whose score reaches `threshold` starts a new scene, unless the current scene is still shorter
// than `min_scene_len_s`.
//
//   clipcap::SceneDetector det(opts);
//   auto [w, h] = clipcap::analysis_size(video.info().width, video.info().height, opts.analysis_long_side);
//   while (video.next()) if (det.add_frame(video.rgb_scaled(w, h), video.pts_s())) new_scene();
//
// Hard cuts between different shots score 30-130; camera motion and noise stay well below 27 (the
// PySceneDetect default kept here). Fades and dissolves are not detected.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "image/image_io.h"

namespace clipcap {

struct SceneDetectOptions {
  double threshold = 27.0;        // score that starts a new scene (0..255; lower = more cuts)
  double min_scene_len_s = 0.6;   // no cut closer than this to the previous one (or the start)
  int analysis_long_side = 160;   // frames are compared at this size (long side; never upscaled)
  void validate() const;          // Error naming the flag when out of range
};

class SceneDetector {
 public:
  explicit SceneDetector(SceneDetectOptions opts = {});
  // Every frame, in presentation order, all the same size. true when it starts a new scene
  // (the first frame starts the first scene).
  bool add_frame(const Image& small_rgb, double pts_s);
  const std::vector<double>& frame_times() const { return times_; }    // pts of every frame given
  const std::vector<size_t>& scene_starts() const { return starts_; }  // index of each scene's first frame
  const std::vector<double>& scores() const { return scores_; }        // per frame (0 for the first)

 private:
  SceneDetectOptions opts_;
  Image prev_hsv_;
  std::vector<double> times_, scores_;
  std::vector<size_t> starts_;
};

// The mean absolute difference of two same-size 8-bit HSV images over pixels and channels.
double content_score(const Image& hsv_a, const Image& hsv_b);
Image rgb_to_hsv(const Image& rgb);
// (w, h) with the long side at most long_side, aspect kept, each at least 1.
std::pair<int64_t, int64_t> analysis_size(int64_t width, int64_t height, int long_side);

}  // namespace clipcap
