// The model side of the video pipeline: frames from the reader (infer/frame_reader.h) -> the
// backend's encode() in batches of image_batch() frames, of any videos -> the backend's caption()
// in batches of caption_batch() requests (one per segment: its frames described together; one per
// video with --video-caption: every distinct frame), of any videos -> results in input order.
//
//   clipcap::CaptionBatcher batcher(backend, opts, paths, on_done, &progress, timings);
//   while (auto m = queue.pop()) batcher.handle(*m);
//   batcher.finish();   // runs what is left; on_done has then seen every video, in order
//
// Only full batches run while frames keep coming (a batch of 1 costs nearly what a full one does);
// the rest runs at the end. A finished video's files are written (write_video_outputs) before
// on_done sees it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/caption_backend.h"
#include "infer/frame_reader.h"
#include "infer/video_result.h"

namespace clipcap {

class Progress;

class CaptionBatcher {
 public:
  // progress (optional): advanced once per video, with frames/s as its note.
  CaptionBatcher(CaptionBackend& backend, const VideoCaptionOptions& opts, const std::vector<std::string>& paths,
                 const std::function<void(const VideoResult&)>& on_done, Progress* progress,
                 VideoCaptionTimings& timings);
  ~CaptionBatcher();
  void handle(FrameMessage& m);
  void finish();  // no more messages: run what is left

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clipcap
