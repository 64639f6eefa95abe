// One video's captions, and the files they are written to.
//
//   clipcap::VideoResult r = ...;               // from VideoCaptioner (infer/video_captioner.h)
//   clipcap::write_video_outputs(r, opts);      // <stem>_caption.srt/.vtt/.json, _video_caption.txt
//   results_file << r.to_json().dump();         // the --results line
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "infer/cue.h"
#include "infer/video_options.h"

namespace clipcap {

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

// Writes the subtitle files opts.formats names and, with video_caption, <stem>_video_caption.txt
// (each atomically: complete or absent), and lists them in r.outputs.
void write_video_outputs(VideoResult& r, const VideoCaptionOptions& opts);

}  // namespace clipcap
