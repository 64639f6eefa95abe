#include "tests/test_video_support.h"

#include <torch/utils.h>

#include <filesystem>
#include <sstream>

#include "common/atomic_file.h"
#include "model/captioner.h"
#include "model/mapping.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;

namespace clipcap::test {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string generated_video(const std::string& name, const std::string& ffmpeg_args) {
  return cached_file("videos", name, [&](const std::string& path) {
    // ffmpeg picks the container by the extension: give it the real name, then move it.
    const std::string out = path + "." + name;
    auto r = run("ffmpeg -nostdin -v error -y " + ffmpeg_args + " " + shell_quote(out));
    if (r.exit_code != 0 || !fs::exists(out)) ADD_FAILURE() << "ffmpeg could not make " << name << ": " << r.err;
    else fs::rename(out, path);
  });
}

ColourVideo colour_video(const std::string& extension, const std::string& codec_args) {
  ColourVideo v;
  v.cuts = {1.6, 2.6, 4.6};
  v.duration_s = 6.0;
  v.frame_s = 1.0 / 25;
  const std::string src = " -f lavfi -i color=c=red:s=64x48:r=25:d=1.6 -f lavfi -i color=c=blue:s=64x48:r=25:d=1"
                          " -f lavfi -i color=c=white:s=64x48:r=25:d=2 -f lavfi -i color=c=black:s=64x48:r=25:d=1.4"
                          " -filter_complex [0][1][2][3]concat=n=4:v=1:a=0 -pix_fmt yuv420p ";
  std::string tag;
  for (char c : codec_args) tag += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  v.path = generated_video("colours" + tag + "." + extension, src + codec_args);
  return v;
}

const std::string& tiny_model_dir() {
  static const std::string dir = cached_dir("tiny-model", [](const std::string& staging) {
    MappingConfig m;
    m.ep_len = 2;
    m.num_layers = 1;
    m.n_heads = 2;
    m.forward_expansion = 2;
    m.dropout = 0.0;
    torch::manual_seed(0);
    Captioner::create(fixture("tiny-clip"), fixture("tiny-gpt2"), m).save(staging + "/tiny");
  }) + "/tiny";
  return dir;
}

int ffmpeg_subtitle_cues(const std::string& subtitle_path) {
  const std::string ass = temp_dir("ass") + "/out.ass";
  auto r = run("ffmpeg -nostdin -v error -y -i " + shell_quote(subtitle_path) + " " + shell_quote(ass));
  if (r.exit_code != 0 || !fs::exists(ass)) {
    ADD_FAILURE() << "ffmpeg could not read " << subtitle_path << ": " << r.err;
    return -1;
  }
  int n = 0;
  for (const auto& line : split_lines(read_file(ass)))
    if (line.rfind("Dialogue:", 0) == 0) ++n;
  return n;
}

}  // namespace clipcap::test
