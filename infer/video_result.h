// One video's captions, and the files they are written to.
//
//   clipcap::VideoResult r = ...;               // from VideoCaptioner (infer/video_captioner.h)
//   clipcap::write_video_outputs(r, opts);      // <stem>_caption.srt/.vtt/.json, _video_caption.txt
//   results_file << r.to_json().dump();         // the --results line
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "infer/cue.h"
#include "infer/video_options.h"

namespace clipcap {

struct VideoResult {
  std::string path;
  bool ok = false;
  std::string error;            // !ok: "<path>: <problem>"
  bool transient = false;       // !ok because a remote endpoint gave up (a rerun tries it again)
  double duration_s = 0;
  std::vector<Cue> cues;        // merged
  std::string video_caption;    // when asked for
  int64_t frames = 0;           // distinct frames captioned (embedded)
  std::vector<std::string> outputs;  // files written
  // Remote backends: what the endpoints were asked ({"mode", "backend", "prompts", "requests":
  // [{"segment", "frame_times", "prompt", "answer"}], "summary"?}, written as <stem>_caption_run.json so a run
  // can be repeated) and what they counted; null / zero for the local model in frames mode.
  nlohmann::json run;
  int64_t requests = 0, prompt_tokens = 0, completion_tokens = 0;

  // The results.jsonl line: {"path", "duration_s", "frames", "segments": [{start_s, end_s, frame_s,
  // text}], "video_caption"?, "usage"? {requests, prompt_tokens, completion_tokens, total_tokens},
  // "outputs"} or {"path", "error", "transient"?}.
  nlohmann::json to_json() const;
  nlohmann::json usage_json() const;
};

// Writes the subtitle files opts.formats names and, with video_caption, <stem>_video_caption.txt,
// and <stem>_caption_run.json when r.run is set (each atomically: complete or absent), and lists
// them in r.outputs.
void write_video_outputs(VideoResult& r, const VideoCaptionOptions& opts);

}  // namespace clipcap
