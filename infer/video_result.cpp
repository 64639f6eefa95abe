#include "infer/video_result.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "infer/subtitle_formats.h"

namespace fs = std::filesystem;

namespace clipcap {

nlohmann::json VideoResult::to_json() const {
  nlohmann::json j;
  j["path"] = path;
  if (!ok) {
    j["error"] = error;
    return j;
  }
  j["duration_s"] = rounded_seconds(duration_s);
  j["frames"] = frames;
  nlohmann::json segs = nlohmann::json::array();
  for (const Cue& c : cues)
    segs.push_back({{"start_s", rounded_seconds(c.start_s)},
                    {"end_s", rounded_seconds(c.end_s)},
                    {"frame_s", rounded_seconds(c.frame_s)},
                    {"text", c.text}});
  j["segments"] = std::move(segs);
  if (!video_caption.empty()) j["video_caption"] = video_caption;
  j["outputs"] = outputs;
  return j;
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
}

}  // namespace clipcap
