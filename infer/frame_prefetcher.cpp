#include "infer/frame_prefetcher.h"

#include <utility>

#include "common/error.h"

namespace clipcap {

VideoFrame frame_at(VideoDecoder& video, double t, bool first, const EndCheck& check, bool keyframe) {
  const bool found = keyframe ? video.keyframe_near(t) : video.advance_to(t);
  if (!video.has_frame() && first) throw Error(video.info().path + ": no decodable video frames");
  if (!found || !video.has_frame()) check(video, t);
  if (!video.has_frame()) throw Error(video.info().path + ": no decodable video frames");
  return video.frame();
}

FramePrefetcher::FramePrefetcher(std::string path, VideoDecoderOptions opts, std::vector<double> times,
                                 EndCheck check, bool keyframes, size_t ahead)
    : path_(std::move(path)),
      opts_(std::move(opts)),
      times_(std::move(times)),
      check_(std::move(check)),
      keyframes_(keyframes),
      ready_(ahead),
      thread_([this] { run(); }) {}

FramePrefetcher::~FramePrefetcher() {
  ready_.close();  // a push waiting for room returns, and the thread ends
  thread_.join();
}

void FramePrefetcher::run() {
  try {
    VideoDecoder video(path_, opts_);
    for (double t : times_) {
      VideoFrame frame = frame_at(video, t, /*first=*/false, check_, keyframes_);
      {
        std::lock_guard<std::mutex> lock(mu_);
        decoded_ = video.frames_decoded();
      }
      if (!ready_.push(std::move(frame))) return;
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
  }
  ready_.close();
}

VideoFrame FramePrefetcher::next() {
  // Frames decoded before an error are still handed over: the error belongs to a later time.
  if (std::optional<VideoFrame> frame = ready_.pop()) return std::move(*frame);
  std::lock_guard<std::mutex> lock(mu_);
  if (error_) std::rethrow_exception(error_);
  throw Error(path_ + ": no more frames were planned");
}

int64_t FramePrefetcher::frames_decoded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return decoded_;
}

}  // namespace clipcap
