// SubRip (.srt) subtitles from cues.
//
//   std::string text = clipcap::srt_text(cues);      // "1\n00:00:00,000 --> 00:00:02,000\nA dog.\n\n2\n..."
//   clipcap::write_srt("clip_caption.srt", cues);    // atomic: a partial file never has the final name
//
// Cues are numbered from 1, times rounded to the millisecond (cue.h), one text line per cue; an
// empty caption is written as "(no caption)" because an empty text line would end the cue.
#pragma once

#include <string>
#include <vector>

#include "infer/cue.h"

namespace clipcap {

std::string srt_text(const std::vector<Cue>& cues);
void write_srt(const std::string& path, const std::vector<Cue>& cues);

}  // namespace clipcap
