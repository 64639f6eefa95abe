// Video captioning: sampled frames -> CLIP embeddings -> captions -> subtitle cues and files.
//
//   auto model = clipcap::Captioner::load("models/small");
//   clipcap::VideoCaptionOptions opts;                  // -N 10 uniform frames, srt+vtt+json
//   opts.sampling = clipcap::Sampling::kScenes;
//   clipcap::VideoCaptioner vc(model, opts);
//   clipcap::VideoResult r = vc.caption("clip.mp4");    // writes clip_caption.{srt,vtt,json}
//   vc.caption_all(paths, [](const clipcap::VideoResult& r) { ... });   // many videos, one model
//
// Pipeline: one thread decodes (libav, infer/video_decoder.h), picks the frames, preprocesses them
// (CLIPImageProcessor, bit-exact with captioning the frame as an image) and writes --frames JPEGs,
// running ahead of the model through a bounded queue; the calling thread runs batched CLIP forwards
// over frames of any videos (Captioner::embed_images) and batched caption generation over segments
// whose frames are embedded (Captioner::caption_embeddings), of any videos. While input keeps
// coming only full batches run (a batch of 1 costs nearly what a full one does); the rest runs
// at the end. Results come back in input order; timings() says where the time went.
//
// Scenes are found in one decoding pass: each scene's frames are kept (references to decoded
// frames, evenly spread: EvenSampler; at most 64, fewer when 64 would pass 256 MB, e.g. 20 for 4K)
// until its end is known, so the frames captioned are within 1/64 (1/20) of the scene's length of
// the exact positions, and nothing is decoded twice.
//
// Sampling (frame_sampler.h, scene_detector.h): uniform (-N: frame i is the first with
// pts >= i * duration / N, cue i spans [t_i, t_{i+1})), every (--every S), scenes (one cue per
// detected scene, boundaries at the first frame of each new scene, caption of the mean embedding of
// `scene_frames` frames spread through the scene). Neighbouring cues with the same caption merge.
// A segment's caption from one frame is exactly the caption of that frame as an image.
//
// Outputs, next to the video or in out_dir (written atomically, each complete or absent):
//   <stem>_caption.srt, <stem>_caption.vtt, <stem>_caption.json (srt_writer.h, vtt_writer.h,
//   caption_json_writer.h), <stem>_video_caption.txt (video_caption: one line, the caption of the
//   mean embedding of every sampled frame), <stem>_captioning_frames/frame_NNNN.jpg (keep_frames:
//   the representative frame of segment NNNN, before merging).
//
// A bad video (missing, empty, not a video, audio only, truncated, zero duration, undecodable)
// becomes a result with ok == false and error "<path>: <problem>"; the other videos go on.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "infer/cue.h"
#include "infer/scene_detector.h"
#include "infer/video_decoder.h"
#include "model/decoding.h"

namespace clipcap {

class Captioner;
class Progress;

enum class Sampling { kUniform, kEvery, kScenes };

struct VideoCaptionOptions {
  Sampling sampling = Sampling::kUniform;
  int num_frames = 10;          // uniform: frames per video (upstream v2c.py's -N default)
  double every_s = 2.0;         // every: seconds between sampled frames
  SceneDetectOptions scenes;    // scenes: detector settings
  int scene_frames = 3;         // scenes: frames per scene whose mean embedding is captioned (1 = middle frame)

  std::string out_dir;          // "" = next to each video
  bool write_srt = true, write_vtt = true, write_json = true;
  bool keep_frames = false;     // <stem>_captioning_frames/frame_NNNN.jpg
  bool video_caption = false;   // one caption for the whole video, <stem>_video_caption.txt

  int batch_size = 16;          // frames per CLIP forward
  int caption_batch = 64;       // captions per generation batch: a step streams every GPT-2 weight
                                // once for the whole batch, so 16 rows leave it memory-bound
                                // (bench/README.md, "Video": 60 captions 2.2 s at 16, 1.3 s at 64)
  int queue_frames = 128;       // decoded, preprocessed frames waiting for the model at most (~600 KB
                                // each at 224 px): room enough that the decoder runs to the end
                                // while the model is behind, instead of idling its core
  DecodeOptions decoding;       // caption decoding (the model's defaults unless flags say otherwise)
  VideoDecoderOptions decoder;  // libav decoding threads (0: see decoder_options() in the .cpp), seeking
  int planned_readers = 2;      // -N/--every with frames >= seek_min_gap_s apart: decoders per video (1-2)

  void validate() const;  // Error naming the flag when a value is out of range
};

struct VideoResult {
  std::string path;
  bool ok = false;
  std::string error;            // !ok: "<path>: <problem>"
  double duration_s = 0;
  std::vector<Cue> cues;        // merged
  std::string video_caption;    // when asked for
  int64_t frames = 0;           // distinct frames captioned (embedded)
  std::vector<std::string> outputs;  // files written

  // The results.jsonl line: {"path", "duration_s", "frames", "segments": [{start_s, end_s, frame_s,
  // text}], "video_caption"?, "outputs"} or {"path", "error"}.
  nlohmann::json to_json() const;
};

// "<out_dir or the video's directory>/<video file name without its extension>".
std::string output_stem(const std::string& video_path, const std::string& out_dir);

// Where the time of the last caption_all() went (seconds; the two threads overlap).
struct VideoCaptionTimings {
  double wall = 0;
  double reader_decode = 0;   // decoding thread: demuxing, decoding, seeking, scene analysis
  double reader_frames = 0;   // decoding thread: RGB conversion, CLIP preprocessing, --frames JPEGs
  double reader_blocked = 0;  // decoding thread: waiting for room in the queue (the model is behind)
  double model_clip = 0;      // model thread: CLIP forwards
  double model_captions = 0;  // model thread: mapping + generation
  int64_t frames_decoded = 0; // frames the decoder output (non-reference frames it skipped are not counted)
};

class VideoCaptioner {
 public:
  VideoCaptioner(Captioner& captioner, VideoCaptionOptions opts);

  // Every video, in order; on_done is called on this thread as each finishes (in input order),
  // after its files are written. progress (optional): advanced once per video, with frames/s as
  // its note.
  void caption_all(const std::vector<std::string>& paths, const std::function<void(const VideoResult&)>& on_done,
                   Progress* progress = nullptr);
  VideoResult caption(const std::string& path);

  const VideoCaptionOptions& options() const { return opts_; }
  const VideoCaptionTimings& timings() const { return timings_; }

 private:
  Captioner& captioner_;
  VideoCaptionOptions opts_;
  VideoCaptionTimings timings_;
};

}  // namespace clipcap
