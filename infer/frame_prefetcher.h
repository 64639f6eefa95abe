// Decodes the frames at given times on a thread and a decoder of its own, and hands them over in
// order: a second reader of the same video. With -N/--every each sampled frame is decoded from its
// own keyframe, so two readers taking every other time split the decoding work evenly.
//
//   FramePrefetcher ahead(path, decoder_opts, {t1, t3, t5}, check);
//   VideoFrame f = ahead.next();   // the frame at t1 (blocks until decoded); rethrows its errors
//
// Destroying it stops the thread (also while it waits for room) and joins it.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/bounded_queue.h"
#include "infer/video_decoder.h"

namespace clipcap {

// check(decoder, t): called when the stream ended before t (the last frame is current, or none
// after a seek past the data); throws when that means a damaged file.
using EndCheck = std::function<void(const VideoDecoder&, double)>;

// The frame at t (the first with pts >= t; keyframe: the keyframe nearest to t): what each reader
// does per planned time. first: t is the video's first planned time, where no frame at all means
// an undecodable video.
VideoFrame frame_at(VideoDecoder& video, double t, bool first, const EndCheck& check, bool keyframe = false);

class FramePrefetcher {
 public:

  FramePrefetcher(std::string path, VideoDecoderOptions opts, std::vector<double> times, EndCheck check,
                  bool keyframes = false, size_t ahead = 4);
  ~FramePrefetcher();
  FramePrefetcher(const FramePrefetcher&) = delete;
  FramePrefetcher& operator=(const FramePrefetcher&) = delete;

  VideoFrame next();               // the next time's frame, in order; rethrows the decoder's error
  int64_t frames_decoded() const;  // by its decoder so far

 private:
  void run();

  const std::string path_;
  const VideoDecoderOptions opts_;
  const std::vector<double> times_;
  const EndCheck check_;
  const bool keyframes_;

  BoundedQueue<VideoFrame> ready_;
  mutable std::mutex mu_;
  std::exception_ptr error_;  // set before ready_ closes
  int64_t decoded_ = 0;
  std::thread thread_;
};

}  // namespace clipcap
