// Video captioning: sampled frames -> the caption backend -> subtitle cues and files. The pipeline
// that joins the frame reader (infer/frame_reader.h, on a thread of its own) and the caption batcher
// (infer/caption_batcher.h, on the calling thread) through a bounded queue.
//
//   clipcap::LocalBackend backend(clipcap::Captioner::load("models/small"), "models/small");
//   clipcap::VideoCaptionOptions opts;                  // -N 10 uniform frames, srt+vtt+json
//   opts.sampling = clipcap::Sampling::kScenes;
//   clipcap::VideoCaptioner vc(backend, opts);
//   clipcap::VideoResult r = vc.caption("clip.mp4");    // writes clip_caption.{srt,vtt,json}
//   vc.caption_all(paths, [](const clipcap::VideoResult& r) { ... });   // many videos, one model
//
// Cues: uniform (-N: frame i is the first with pts >= i * duration / N, cue i spans [t_i, t_{i+1})),
// every (--every S), scenes (one cue per detected scene, boundaries at the first frame of each new
// scene, caption of `scene_frames` frames spread through the scene). Neighbouring cues with the same
// caption merge. A segment's caption from one frame is exactly the caption of that frame as an image.
//
// Outputs, next to the video or in out_dir (written atomically, each complete or absent):
//   <stem>_caption.srt, .vtt, .json (infer/subtitle_formats.h), <stem>_video_caption.txt
//   (video_caption: one line, the caption of every sampled frame together),
//   <stem>_captioning_frames/frame_NNNN.jpg (keep_frames: the representative frame of segment NNNN,
//   before merging).
//
// A bad video (missing, empty, not a video, audio only, truncated, zero duration, undecodable)
// becomes a result with ok == false and error "<path>: <problem>"; the other videos go on.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "backend/caption_backend.h"
#include "infer/video_options.h"
#include "infer/video_result.h"

namespace clipcap {

class Progress;

class VideoCaptioner {
 public:
  VideoCaptioner(CaptionBackend& backend, VideoCaptionOptions opts);  // validates opts

  // Every video, in order; on_done is called on this thread as each finishes (in input order),
  // after its files are written. progress (optional): advanced once per video, with frames/s as
  // its note.
  void caption_all(const std::vector<std::string>& paths, const std::function<void(const VideoResult&)>& on_done,
                   Progress* progress = nullptr);
  VideoResult caption(const std::string& path);

  const VideoCaptionOptions& options() const { return opts_; }
  const VideoCaptionTimings& timings() const { return timings_; }

 private:
  CaptionBackend& backend_;
  VideoCaptionOptions opts_;
  VideoCaptionTimings timings_;
};

}  // namespace clipcap
