#include "infer/frame_sampler.h"

#include <string>

#include "common/error.h"

namespace clipcap {

std::vector<FrameSegment> uniform_segments(double duration_s, int n) {
  if (n < 1) throw Error("-N/--num-frames must be >= 1, got " + std::to_string(n));
  if (!(duration_s > 0)) throw Error("uniform sampling needs a positive duration");
  std::vector<FrameSegment> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    // Each boundary computed the same way from i, so end of cue i == start of cue i + 1 exactly.
    out[i].start_s = i * duration_s / n;
    out[i].end_s = i + 1 == n ? duration_s : (i + 1) * duration_s / n;
    out[i].frame_times = {out[i].start_s};
  }
  return out;
}

std::vector<FrameSegment> every_segments(double duration_s, double every_s) {
  if (!(every_s > 0)) throw Error("--every must be > 0 seconds, got " + std::to_string(every_s));
  if (!(duration_s > 0)) throw Error("--every sampling needs a positive duration");
  std::vector<FrameSegment> out;
  for (long i = 0; i * every_s < duration_s - 1e-6; ++i) {
    FrameSegment s;
    s.start_s = i * every_s;
    s.end_s = (i + 1) * every_s < duration_s - 1e-6 ? (i + 1) * every_s : duration_s;
    s.frame_times = {s.start_s};
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace clipcap
