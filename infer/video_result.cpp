#include "infer/video_result.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "backend/caption_backend.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "infer/caption_json_writer.h"
#include "infer/subtitle_formats.h"

namespace fs = std::filesystem;

namespace clipcap {

nlohmann::json VideoResult::to_json() const {
  nlohmann::json j;
  j["path"] = path;
  if (!ok) {
    j["error"] = error;
    if (transient) j["transient"] = true;
    return j;
  }
  j["duration_s"] = rounded_seconds(duration_s);
  j["frames"] = frames;
  nlohmann::json segs = nlohmann::json::array();
  for (const Cue& c : cues) {
    segs.push_back({{"start_s", rounded_seconds(c.start_s)},
                    {"end_s", rounded_seconds(c.end_s)},
                    {"frame_s", rounded_seconds(c.frame_s)},
                    {"text", c.text}});
    if (c.rerank.candidates > 0) segs.back()["rerank"] = rerank_json(c.rerank);
  }
  j["segments"] = std::move(segs);
  if (!video_caption.empty()) j["video_caption"] = video_caption;
  if (requests > 0) j["usage"] = usage_json();
  j["outputs"] = outputs;
  return j;
}

nlohmann::json VideoResult::usage_json() const {
  return {{"requests", requests},
          {"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

void write_video_outputs(VideoResult& r, const VideoCaptionOptions& opts) {
  const std::string stem = output_stem(r.path, opts.out_dir);
  if (!opts.out_dir.empty()) {
    std::error_code ec;
    fs::create_directories(opts.out_dir, ec);
    if (ec) throw Error(opts.out_dir + ": cannot create the output directory (" + ec.message() + ")");
  }
  for (const std::string& name : opts.formats) {
    const SubtitleFormat& f = subtitle_format(name);
    f.write(stem + f.suffix, r.cues);
    r.outputs.push_back(stem + f.suffix);
  }
  if (opts.video_caption) {
    write_file_atomic(stem + "_video_caption.txt", one_line(r.video_caption) + "\n");
    r.outputs.push_back(stem + "_video_caption.txt");
  }
  if (!r.run.is_null()) {
    nlohmann::json run = r.run;
    run["video"] = r.path;
    run["duration_s"] = rounded_seconds(r.duration_s);
    if (r.requests > 0) run["usage"] = r.usage_json();
    if (!r.video_caption.empty()) run["video_caption"] = r.video_caption;
    write_file_atomic(stem + "_caption_run.json", run.dump(2) + "\n");
    r.outputs.push_back(stem + "_caption_run.json");
  }
}

}  // namespace clipcap
