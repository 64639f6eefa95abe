// WebVTT (.vtt) subtitles from cues.
//
//   std::string text = clipcap::vtt_text(cues);   // "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nA dog.\n\n..."
//   clipcap::write_vtt("clip_caption.vtt", cues);  // atomic
//
// Times rounded to the millisecond (cue.h); '&', '<' and '>' in captions are escaped as the
// format requires (so "-->" can never appear in a text line); an empty caption is "(no caption)".
#pragma once

#include <string>
#include <vector>

#include "infer/cue.h"

namespace clipcap {

std::string vtt_text(const std::vector<Cue>& cues);
void write_vtt(const std::string& path, const std::vector<Cue>& cues);

}  // namespace clipcap
