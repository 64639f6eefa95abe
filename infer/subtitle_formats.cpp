#include "infer/subtitle_formats.h"

#include <algorithm>

#include "common/error.h"
#include "infer/caption_json_writer.h"
#include "infer/srt_writer.h"
#include "infer/vtt_writer.h"

namespace clipcap {

const std::vector<SubtitleFormat>& subtitle_formats() {
  static const std::vector<SubtitleFormat> all = {
      {"srt", "_caption.srt", write_srt},
      {"vtt", "_caption.vtt", write_vtt},
      {"json", "_caption.json", [](const std::string& path, const std::vector<Cue>& cues) { write_caption_json(path, cues); }},
  };
  return all;
}

std::string subtitle_format_names() {
  std::string names;
  for (const auto& f : subtitle_formats()) names += (names.empty() ? "" : ", ") + f.name;
  return names;
}

const SubtitleFormat& subtitle_format(const std::string& name) {
  for (const auto& f : subtitle_formats())
    if (f.name == name) return f;
  throw Error("--formats: unknown format '" + name + "' (" + subtitle_format_names() + ")");
}

std::vector<std::string> parse_subtitle_formats(const std::string& list) {
  std::vector<std::string> given;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string name = list.substr(start, comma - start);
    if (!name.empty()) given.push_back(subtitle_format(name).name);
    start = comma + 1;
  }
  std::vector<std::string> out;  // in the table's order, each once
  for (const auto& f : subtitle_formats())
    if (std::find(given.begin(), given.end(), f.name) != given.end()) out.push_back(f.name);
  return out;
}

}  // namespace clipcap
