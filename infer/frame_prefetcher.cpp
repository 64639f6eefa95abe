#include "infer/frame_prefetcher.h"

#include <utility>

#include "common/error.h"

namespace clipcap {

VideoFrame frame_at(VideoDecoder& video, double t, bool first, const EndCheck& check) {
  const bool found = video.advance_to(t);
  if (!video.has_frame() && first) throw Error(video.info().path + ": no decodable video frames");
  if (!found || !video.has_frame()) check(video, t);
  if (!video.has_frame()) throw Error(video.info().path + ": no decodable video frames");
  return video.frame();
}

FramePrefetcher::FramePrefetcher(std::string path, VideoDecoderOptions opts, std::vector<double> times,
                                 EndCheck check, size_t ahead)
    : path_(std::move(path)),
      opts_(std::move(opts)),
      times_(std::move(times)),
      check_(std::move(check)),
      ahead_(ahead < 1 ? 1 : ahead),
      thread_([this] { run(); }) {}

FramePrefetcher::~FramePrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void FramePrefetcher::run() {
  try {
    VideoDecoder video(path_, opts_);
    for (double t : times_) {
      VideoFrame frame = frame_at(video, t, /*first=*/false, check_);
      std::unique_lock<std::mutex> lock(mu_);
      decoded_ = video.frames_decoded();
      changed_.wait(lock, [&] { return stop_ || ready_.size() < ahead_; });
      if (stop_) return;
      ready_.push_back(std::move(frame));
      changed_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
    changed_.notify_all();
  }
}

VideoFrame FramePrefetcher::next() {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait(lock, [&] { return !ready_.empty() || error_; });
  // Frames decoded before an error are still handed over: the error belongs to a later time.
  if (ready_.empty()) std::rethrow_exception(error_);
  VideoFrame frame = std::move(ready_.front());
  ready_.pop_front();
  changed_.notify_all();
  return frame;
}

int64_t FramePrefetcher::frames_decoded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return decoded_;
}

}  // namespace clipcap
