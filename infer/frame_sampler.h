// Which frames to caption: the video's time line cut into segments, each with the times of the
// frames that describe it. The segments tile [0, duration) with no gaps and become the cues.
//
//   auto segs = clipcap::uniform_segments(8.0, 4);   // [0,2) [2,4) [4,6) [6,8), frames at 0, 2, 4, 6
//   auto every = clipcap::every_segments(5.0, 2.0);  // [0,2) [2,4) [4,5)
//   // a segment's caption comes from the first frame with pts >= each of its frame_times
//
//   clipcap::EvenSampler<Frame> scene(64);    // frames of a scene whose end is not known yet
//   scene.add(frame); ...                      // at most 64 kept, evenly spread
//   auto picked = scene.pick(3);               // near 1/6, 1/2 and 5/6 of the way through
//
// Uniform sampling is upstream v2c.py's -N: frame i at t_i = i * duration / N. Upstream's cue i
// spanned only [t_i, t_i + duration / 2N] (gaps); here cue i spans [t_i, t_{i+1}) and the last one
// ends at the video's end.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace clipcap {

struct FrameSegment {
  double start_s = 0, end_s = 0;    // the span the caption covers
  std::vector<double> frame_times;  // non-decreasing; the caption is made from these frames
  std::vector<double> tiled_times;  // grid mode: the times of the frames tiled into the one grid
                                    // image (frame_times then holds that image's one time)
  // The frame whose time the cue reports (frame_s) and --frames keeps: the middle one.
  double representative_time() const { return frame_times.empty() ? start_s : frame_times[frame_times.size() / 2]; }
};

// n >= 1 segments of equal length; Error when n < 1 or duration <= 0.
std::vector<FrameSegment> uniform_segments(double duration_s, int n);
// Segments every `every_s` seconds from 0; the last one is shorter when needed. Error when
// every_s <= 0 or duration <= 0.
std::vector<FrameSegment> every_segments(double duration_s, double every_s);

// Keeps at most `capacity` items of a stream of unknown length, evenly spread: every item while
// they fit, then every 2nd, every 4th, ... (the kept items are those whose index in the stream is
// a multiple of the stride). pick(k) gives the kept items nearest to the k positions
// floor((j + 0.5) * n / k) of the n items seen: exactly those items while nothing was dropped,
// otherwise at most stride / 2 <= n / capacity items away.
template <typename T>
class EvenSampler {
 public:
  explicit EvenSampler(size_t capacity) : capacity_(std::max<size_t>(capacity, 2)) {}

  void add(T item) {
    if (seen_ % stride_ == 0) {
      kept_.push_back({seen_, std::move(item)});
      if (kept_.size() > capacity_) thin();
    }
    ++seen_;
  }

  std::vector<const T*> pick(size_t k) const {
    std::vector<const T*> out;
    if (kept_.empty()) return out;
    k = std::min(k, seen_);
    size_t previous = kept_.size();
    for (size_t j = 0; j < k; ++j) {
      const double want = static_cast<double>(static_cast<size_t>((j + 0.5) * static_cast<double>(seen_) / k));
      size_t best = 0;
      for (size_t i = 1; i < kept_.size(); ++i)
        if (std::abs(static_cast<double>(kept_[i].index) - want) < std::abs(static_cast<double>(kept_[best].index) - want))
          best = i;
      if (best != previous) out.push_back(&kept_[best].item);
      previous = best;
    }
    return out;
  }

  size_t seen() const { return seen_; }
  size_t stride() const { return stride_; }
  void clear() {
    kept_.clear();
    seen_ = 0;
    stride_ = 1;
  }

 private:
  void thin() {
    stride_ *= 2;
    kept_.erase(std::remove_if(kept_.begin(), kept_.end(), [&](const Entry& e) { return e.index % stride_ != 0; }),
                kept_.end());
  }
  struct Entry {
    size_t index;
    T item;
  };
  size_t capacity_, seen_ = 0, stride_ = 1;
  std::vector<Entry> kept_;
};

}  // namespace clipcap
