// The JSON subtitles file: upstream v2c.py's list of cues, with exact numeric times added.
//
//   nlohmann::ordered_json j = clipcap::caption_json(cues);
//   // [{"start": "00:00:00,000", "end": "00:00:02,000", "lang": "en", "text": "A dog.",
//   //   "start_s": 0.0, "end_s": 2.0, "frame_s": 0.0}, ...]
//   clipcap::write_caption_json("clip_caption.json", cues);   // atomic
//
// start/end/lang/text are upstream's keys and formats (SRT time strings, now rounded rather than
// truncated), so readers of upstream's files keep working; start_s/end_s (the same times as
// numbers, rounded to the millisecond) and frame_s (the time of the frame the caption was made
// from) are additions, and "rerank" (backend/caption_backend.h rerank_json) when the
// caption was reranked (--rerank clip). The text is kept as the model wrote it ("" stays "").
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "infer/cue.h"

namespace clipcap {

nlohmann::ordered_json caption_json(const std::vector<Cue>& cues, const std::string& lang = "en");
void write_caption_json(const std::string& path, const std::vector<Cue>& cues, const std::string& lang = "en");

}  // namespace clipcap
