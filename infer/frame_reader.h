// The video decoding thread's work: for each video, decode it (libav, infer/video_decoder.h), pick
// the frames the sampling asks for, prepare them for the caption backend (for the local model, CLIP
// preprocessing: bit-exact with captioning the frame as an image), write --frames JPEGs, and send
// it all to the caption batcher through a bounded queue, running ahead of the model.
//
//   clipcap::FrameQueue queue(128);
//   clipcap::FrameReader reader(opts, backend, queue, timings);
//   for (size_t i = 0; i < paths.size(); ++i) if (!reader.read(i, paths[i])) break;   // Error: a bad video
//
// Sampling (frame_sampler.h, scene_detector.h): uniform (-N) and every (--every) know their frame
// times up front and seek to each; frames far apart are decoded by two readers (a FramePrefetcher
// takes every other one). Scenes are found in one decoding pass: each scene's frames are kept
// (references to decoded frames, evenly spread: EvenSampler; at most 64, fewer when 64 would pass
// 256 MB, e.g. 20 for 4K) until its end is known, so the frames captioned are within 1/64 (1/20)
// of the scene's length of the exact positions, and nothing is decoded twice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/caption_backend.h"
#include "common/bounded_queue.h"
#include "infer/frame_sampler.h"
#include "infer/video_options.h"

namespace clipcap {

// What the reader tells the batcher about each video, in this order: each segment's sampled
// frames followed by the segment itself (its end is known only then for scenes), then the end of
// the video; or, at any point, why it failed.
struct FrameMessage {
  enum class Kind { kFrame, kSegment, kEnd, kFailed } kind = Kind::kFrame;
  size_t video = 0;
  double pts_s = 0;                 // kFrame
  int64_t same_as = -1;             // kFrame: an earlier sample (frame message) of the same decoded frame
  ImagePayload payload;             // kFrame, unless same_as >= 0: the backend's prepare() of the frame
  FrameSegment segment;             // kSegment: its frames are the last frame_times.size() samples
  double duration_s = 0;            // kEnd
  std::vector<std::string> files;   // kEnd: frame JPEGs written
  std::string error;                // kFailed
};

using FrameQueue = BoundedQueue<FrameMessage>;

// libav's decoding threads for these options: --decode-threads, or clipcap's choice for 0.
VideoDecoderOptions decoder_options(const VideoCaptionOptions& opts);

class FrameReader {
 public:
  FrameReader(const VideoCaptionOptions& opts, const CaptionBackend& backend, FrameQueue& queue,
              VideoCaptionTimings& timings);
  ~FrameReader();
  // Sends video `index`'s frames, segments and end; false when the queue was closed (the batcher
  // stopped). Throws the video's Error ("<path>: <problem>") when it cannot be read.
  bool read(size_t index, const std::string& path);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clipcap
