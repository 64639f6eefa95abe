// Video frames through FFmpeg's libavformat/libavcodec: upright RGB frames with presentation
// times in seconds from the start of the video.
//
//   clipcap::VideoDecoder video("clip.mp4");          // throws clipcap::Error "<path>: <problem>"
//   double d = video.info().duration_s;
//   while (video.next()) use(video.pts_s(), video.rgb());          // every frame, in order
//   if (video.advance_to(12.5)) use(video.rgb());   // the first frame with pts >= 12.5 s (seeks)
//
// Times: pts = best_effort_timestamp * time_base minus the container's start time (the stream's
// when the container has none), so the first frame of a file whose video starts it is at 0 even
// with B-frames, edit lists or -output_ts_offset; variable frame rates keep their real times.
// Duration: the video stream's end (start + duration) when the container stores it, else the end
// of the last packet found by reading the tail of the file, relative to the same origin.
// Rotation: a display matrix (phone videos, `-metadata:s:v rotate=90`) is applied to the frames
// rgb() returns, in 90-degree steps, so they are upright like a player shows them; info() gives the
// upright size. Mirroring in a display matrix is ignored.
//
// Bad input (missing, empty, directory, not a media file, an image, audio only, no decoder for the
// codec) throws from the constructor; a stream none of whose packets decode throws from next().
// Read errors mid-file (truncation) end the stream: the caller sees frames stop early and
// info().read_error says why. libav's own logging is silenced (CLIPCAP_AV_LOG=1 shows it).
// Not thread-safe; one decoder per thread.
//
// Speed: rgb() converts only the frames asked for; advance_to() tells the decoder to drop
// non-reference frames (B-frames nothing predicts from) whose packet time is before the target,
// which never changes the frame it lands on; frame() keeps a frame (a reference to the decoder's
// buffer, no copy) for converting later, after the decoder has moved on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "image/image_io.h"

struct AVFrame;

namespace clipcap {

// A decoded frame kept after the decoder moved on (holds a reference to its buffer, not a copy).
class VideoFrame {
 public:
  double pts_s = 0, duration_s = 0;
  bool empty() const { return !frame_; }
  Image rgb() const;  // full size, upright, 8-bit RGB

 private:
  friend class VideoDecoder;
  std::shared_ptr<const AVFrame> frame_;
  int rotation_ = 0;
  std::string path_;
};

struct VideoDecoderOptions {
  int threads = 0;               // libavcodec decoding threads; 0 = FFmpeg's choice (all cores)
  double seek_min_gap_s = 3.0;   // advance_to() seeks over gaps larger than this when the file has
                                 // no keyframe index (with an index: whenever a keyframe is skipped)
};

struct VideoInfo {
  std::string path;
  double duration_s = 0;       // see the header comment; > 0 after construction
  int64_t width = 0, height = 0;  // upright frame size (after rotation)
  int rotation = 0;            // clockwise degrees applied to decoded frames: 0, 90, 180, 270
  double frame_rate = 0;       // average frames per second (0 if the container does not say)
  std::string codec;           // "h264", "vp9", ...
  std::string container;       // "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", ...
};

class VideoDecoder {
 public:
  explicit VideoDecoder(const std::string& path, const VideoDecoderOptions& opts = {});
  ~VideoDecoder();
  VideoDecoder(const VideoDecoder&) = delete;
  VideoDecoder& operator=(const VideoDecoder&) = delete;

  const VideoInfo& info() const;

  // Decodes the next frame in presentation order; false at the end (the last frame stays current).
  bool next();
  // Makes the current frame the first one with pts >= t_s (1 us tolerance), seeking forward over
  // keyframes when that skips work. Targets must not decrease between calls unless after
  // rewind(). false when the stream ends first: the last frame then stays current.
  bool advance_to(double t_s);
  // Makes the current frame the keyframe nearest to t_s (by the container's keyframe index; without
  // one, the first keyframe from where a backward seek to t_s lands), decoding that frame alone:
  // non-key packets are dropped before the decoder. false when none could be read there (a seek
  // past the data). Any order of targets; next() afterwards continues from an unspecified point.
  bool keyframe_near(double t_s);
  // The time of the first frame the container's index places beyond the end of the file (a file
  // truncated after its index was written, e.g. an mp4 with +faststart), or -1. keyframe_near()
  // never reads those frames, so it is how keyframe sampling sees the truncation.
  double indexed_data_end_s() const;
  // Back to the first frame (the next next() returns it).
  void rewind();

  bool has_frame() const;       // a frame is current
  double pts_s() const;         // current frame's presentation time
  double frame_duration_s() const;  // current frame's duration (packet duration, else 1/frame rate)
  int64_t frames_decoded() const;   // frames output since construction (all passes)
  std::string read_error() const;   // why reading stopped early ("" when it reached the end normally)

  Image rgb() const;  // current frame, full size, upright, 8-bit RGB
  VideoFrame frame() const;  // the current frame, kept
  // Current frame scaled to w x h (area filter), NOT rotated: cheap input for frame differences.
  Image rgb_scaled(int64_t w, int64_t h) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Clockwise rotation by 0/90/180/270 degrees.
Image rotate_clockwise(const Image& img, int degrees);

}  // namespace clipcap
