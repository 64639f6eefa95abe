// Helpers for the video tests: tiny videos generated with the ffmpeg CLI and a tiny captioner model,
// each made once per build (test_support.h cached_dir), and subtitle checks through ffmpeg's own
// parsers.
#pragma once

#include <string>
#include <vector>

namespace clipcap::test {

// ffmpeg -v error -y <args> <dir>/<name>, once per build per name; returns the path. The test
// fails (ADD_FAILURE) when ffmpeg does.
std::string generated_video(const std::string& name, const std::string& ffmpeg_args);

// Solid colours, 64x48 at 25 fps, cuts at 1.6, 2.6 and 4.6 s (150 frames), 6 s long (H.264 with B-frames unless
// another extension/codec is asked for): the scene-detection truth.
struct ColourVideo {
  std::string path;
  std::vector<double> cuts;  // true scene boundaries, seconds
  double duration_s = 0;
  double frame_s = 0;        // one frame interval
};
ColourVideo colour_video(const std::string& extension = "mp4", const std::string& codec_args = "-c:v libx264 -bf 2");

// A native clipcap model made from the tiny CLIP and GPT-2 fixtures (a seeded random mapping).
const std::string& tiny_model_dir();

// ffmpeg converts the subtitle file to ASS; returns the number of Dialogue lines (-1 on failure).
int ffmpeg_subtitle_cues(const std::string& subtitle_path);

std::string shell_quote(const std::string& s);
std::vector<std::string> split_lines(const std::string& s);

}  // namespace clipcap::test
