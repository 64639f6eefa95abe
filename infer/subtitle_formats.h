// The subtitle files `clipcap-infer video` can write, one row each: --formats names them, the
// pipeline writes each chosen one as <stem><suffix>. A new format is a writer and one row here.
//
//   for (const auto& name : clipcap::parse_subtitle_formats("srt,json"))
//     clipcap::subtitle_format(name).write(stem + clipcap::subtitle_format(name).suffix, cues);
#pragma once

#include <string>
#include <vector>

#include "infer/cue.h"

namespace clipcap {

struct SubtitleFormat {
  std::string name;    // --formats value
  std::string suffix;  // appended to the output stem
  void (*write)(const std::string& path, const std::vector<Cue>& cues);  // atomic
};

const std::vector<SubtitleFormat>& subtitle_formats();
const SubtitleFormat& subtitle_format(const std::string& name);  // Error listing the known names
std::string subtitle_format_names();                             // "srt, vtt, json"
// "json,srt" -> {"srt", "json"} (the table's order, each once); Error "--formats: unknown format 'x' (srt, vtt, json)".
std::vector<std::string> parse_subtitle_formats(const std::string& list);

}  // namespace clipcap
