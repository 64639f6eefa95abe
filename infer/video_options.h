// What `clipcap-infer video` is asked to do for each video: how frames are sampled, which files are
// written, how the decoder runs. Shared by the frame reader, the caption batcher and the pipeline
// (infer/video_captioner.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/openai_chat_client.h"
#include "image/frame_grid.h"
#include "infer/scene_detector.h"
#include "infer/video_decoder.h"
#include "model/decode_options.h"

namespace clipcap {

enum class Sampling { kUniform, kEvery, kScenes };

// Which frame stands for a target time (-N, --every; --seek):
//   exact     the first frame at or after it (decodes from the keyframe before it);
//   keyframe  the nearest keyframe: one frame decoded per sample, non-key packets skipped at the
//             demuxer. The cue keeps the target times as its bounds; frame_s is the frame's time.
enum class Seek { kExact, kKeyframe };
// Where in each segment its frame is taken (--sample-point): start (upstream's -N), or mid, the
// middle of the segment (EasyAnimate's "mid"; with --scenes: the scene's middle frame).
enum class SamplePoint { kStart, kMid };

// How a video's sampled frames become captions (--mode):
//   frames   each segment's frames captioned (the default; local or remote backend);
//   grid     every sampled frame tiled into one image, one request per video, one cue spanning it
//            (ShareCaptioner-Video's fast captioning);
//   sliding  differential sliding captioning (ShareCaptioner-Video): the first frame described,
//            then each request carries two adjacent frames and the previous caption; each cue
//            holds what changed. Requests of one video run one after another.
enum class CaptionMode { kFrames, kGrid, kSliding };
CaptionMode parse_caption_mode(const std::string& name);  // Error naming --mode
std::string caption_mode_name(CaptionMode mode);

// The instructions of the remote modes: templates with named fields (common/prompt_template.h).
// "" = the mode's default (infer/video_prompts.h); the run record stores what was sent.
struct VideoPrompts {
  std::string main;   // --prompt: frames: each segment's; grid: the grid's; sliding: the differential one
  std::string first;  // --first-prompt: sliding's first frame
  std::string summary;  // --summary-prompt
};

struct VideoCaptionOptions {
  Sampling sampling = Sampling::kUniform;
  int num_frames = 10;          // uniform: frames per video (upstream v2c.py's -N default)
  double every_s = 2.0;         // every: seconds between sampled frames
  SceneDetectOptions scenes;    // scenes: detector settings
  int scene_frames = 3;         // scenes: frames per scene described together (1 = middle frame)
  Seek seek = Seek::kExact;
  SamplePoint sample_point = SamplePoint::kStart;

  std::string out_dir;          // "" = next to each video
  std::vector<std::string> formats = {"srt", "vtt", "json"};  // subtitle files (infer/subtitle_formats.h)
  bool keep_frames = false;     // <stem>_captioning_frames/frame_NNNN.jpg
  bool video_caption = false;   // one caption for the whole video, <stem>_video_caption.txt

  int queue_frames = 128;       // decoded, preprocessed frames waiting for the model at most (~600 KB
                                // each at 224 px): room enough that the decoder runs to the end
                                // while the model is behind, instead of idling its core
  CaptionMode mode = CaptionMode::kFrames;
  VideoPrompts prompts;
  GridLayout grid;              // grid: --grid-columns, --grid-width
  EndpointOptions summary;      // --summary-endpoint ...: with a URL, the video caption is this text
                                // model's summary of the cues (EasyAnimate's frame captions + LLM)

  DecodeOptions decoding;       // caption decoding (the model's defaults unless flags say otherwise)
  VideoDecoderOptions decoder;  // libav decoding threads (0: decoder_options() in frame_reader.h), seeking
  int planned_readers = 2;      // -N/--every with frames >= seek_min_gap_s apart: decoders per video (1-2)
  int video_workers = 0;        // --video-workers: videos decoded at once in a batch (0: chosen from
                                // the cores, video_workers_for())

  void validate() const;  // Error naming the flag when a value is out of range
};

// Where the time of the last caption_all() went (seconds; the reader and model threads overlap).
struct VideoCaptionTimings {
  double wall = 0;
  double reader_decode = 0;   // decoding thread: demuxing, decoding, seeking, scene analysis
  double reader_frames = 0;   // decoding thread: RGB conversion, the backend's prepare(), --frames JPEGs
  double reader_blocked = 0;  // decoding thread: waiting for room in the queue (the model is behind)
  double model_clip = 0;      // model thread: the backend's encode() (CLIP forwards)
  double model_captions = 0;  // model thread: the backend's caption() (mapping + generation)
  int64_t frames_decoded = 0; // frames the decoder output (non-reference frames it skipped are not counted)
};

// Videos decoded at once for this many videos: --video-workers, or for 0 the cores (at least 1, at
// most 4; bench/README.md "Short clips"), never more than the videos.
int video_workers_for(const VideoCaptionOptions& opts, size_t videos);

// "<out_dir or the video's directory>/<video file name without its extension>".
std::string output_stem(const std::string& video_path, const std::string& out_dir);

}  // namespace clipcap
