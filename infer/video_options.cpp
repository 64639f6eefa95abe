#include "infer/video_options.h"

#include <algorithm>
#include <filesystem>
#include <thread>

#include "common/error.h"
#include "infer/subtitle_formats.h"
#include "infer/video_prompts.h"

namespace fs = std::filesystem;

namespace clipcap {

void VideoCaptionOptions::validate() const {
  if (num_frames < 1) throw Error("-N/--num-frames must be >= 1, got " + std::to_string(num_frames));
  if (!(every_s > 0)) throw Error("--every must be > 0 seconds, got " + std::to_string(every_s));
  if (scene_frames < 1) throw Error("--scene-frames must be >= 1, got " + std::to_string(scene_frames));
  if (queue_frames < 1) throw Error("the frame queue must hold at least one frame");
  if (planned_readers < 1 || planned_readers > 2)
    throw Error("planned_readers must be 1 or 2, got " + std::to_string(planned_readers));
  if (decoder.threads < 0)
    throw Error("--decode-threads must be >= 0 (0 = chosen by the sampling), got " + std::to_string(decoder.threads));
  for (const auto& f : formats) subtitle_format(f);
  if (formats.empty() && !video_caption)
    throw Error("--formats: nothing to write (give at least one of " + subtitle_format_names() + ")");
  scenes.validate();
  decoding.validate();
  if (mode == CaptionMode::kGrid) tile_frames({Image{16, 16, std::vector<uint8_t>(16 * 16 * 3)}}, grid);  // layout errors
  if (!summary.url.empty()) summary.validate("--summary-endpoint");
  if (seek == Seek::kKeyframe && sampling == Sampling::kScenes)
    throw Error("--seek keyframe works with -N and --every (--scenes decodes every frame to find the cuts)");
  if (video_workers < 0) throw Error("--video-workers must be >= 0 (0 = from the cores), got " + std::to_string(video_workers));
  check_video_prompts(*this);
}

int video_workers_for(const VideoCaptionOptions& opts, size_t videos) {
  int n = opts.video_workers;
  if (n == 0) n = std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, 4);
  return std::max(1, std::min(n, static_cast<int>(std::max<size_t>(videos, 1))));
}

CaptionMode parse_caption_mode(const std::string& name) {
  if (name == "frames") return CaptionMode::kFrames;
  if (name == "grid") return CaptionMode::kGrid;
  if (name == "sliding") return CaptionMode::kSliding;
  throw Error("--mode: unknown mode '" + name + "' (frames, grid, sliding)");
}

std::string caption_mode_name(CaptionMode mode) {
  switch (mode) {
    case CaptionMode::kGrid: return "grid";
    case CaptionMode::kSliding: return "sliding";
    default: return "frames";
  }
}

std::string output_stem(const std::string& video_path, const std::string& out_dir) {
  const fs::path p(video_path);
  const fs::path dir = out_dir.empty() ? p.parent_path() : fs::path(out_dir);
  return (dir / p.stem()).string();
}

}  // namespace clipcap
