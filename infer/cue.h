// A subtitle cue: a time span of the video and the caption written for it, plus the shared
// millisecond time formatter of the SRT, WebVTT and JSON writers.
//
//   std::vector<clipcap::Cue> cues = {{0.0, 2.0, 0.0, "A red wall."}, {2.0, 4.0, 2.04, "A red wall."}};
//   cues = clipcap::merge_adjacent(cues);               // one cue 0-4 s
//   clipcap::format_timestamp(1.9996, ',');             // "00:00:02,000" (rounded, not truncated)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/caption.h"

namespace clipcap {

struct Cue {
  double start_s = 0;  // cue start, seconds from the start of the video
  double end_s = 0;    // cue end (exclusive); the next cue starts here
  double frame_s = 0;  // presentation time of the frame the caption was made from
  std::string text;    // the caption
  RerankScores rerank;
};

// Neighbouring cues with the same text become one (first start, last end, first frame time);
// cues that are empty once rounded to the millisecond are dropped, their span going to the
// previous cue (or the next one when first), so the cues still tile the same interval.
std::vector<Cue> merge_adjacent(const std::vector<Cue>& cues);

// Seconds to whole milliseconds, rounded half away from zero; negative times clamp to 0.
int64_t round_ms(double seconds);
// "HH:MM:SS<sep>mmm" (sep ',' for SRT, '.' for WebVTT); hours grow past 99 when needed.
std::string format_timestamp(double seconds, char ms_separator);
// Seconds rounded to the millisecond, for JSON numbers (2.0, 1.5, 0.333).
double rounded_seconds(double seconds);
// The caption on one line (newlines and tabs become spaces), as subtitle lines need.
std::string one_line(const std::string& text);

}  // namespace clipcap
