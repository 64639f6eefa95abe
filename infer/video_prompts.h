// The video pipeline's prompt templates: each mode's defaults, the fields each template may use,
// and filling them per request. Times are seconds with 3 decimals ("12.500").
//
//   --prompt (frames)    {index} {start} {end} {frame_time}       (default: the backend's own prompt)
//   --prompt (grid)      {frames} {duration} {frame_times}
//   --first-prompt       {frame_time}                              (sliding's first frame)
//   --prompt (sliding)   {previous_caption} {previous_time} {frame_time}
//   --summary-prompt     {frame_captions} {frames} {duration}      ({frame_captions}: a line
//                                                                  "[start-end s] text" per cue)
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "infer/cue.h"
#include "infer/frame_sampler.h"
#include "infer/video_options.h"

namespace clipcap {

// Error naming the flag when a template uses a field its mode does not have.
void check_video_prompts(const VideoCaptionOptions& opts);

// The templates in effect ({"prompt", "first_prompt"?, "summary_prompt"?}); "prompt" is absent in
// frames mode without --prompt (the backend's own prompt is sent, recorded in its description).
nlohmann::json video_prompt_record(const VideoCaptionOptions& opts);

std::string frame_prompt(const VideoCaptionOptions& opts, size_t index, const FrameSegment& seg, double frame_time);
std::string grid_prompt(const VideoCaptionOptions& opts, const std::vector<double>& frame_times, double duration_s);
std::string sliding_first_prompt(const VideoCaptionOptions& opts, double frame_time);
std::string sliding_prompt(const VideoCaptionOptions& opts, const std::string& previous_caption, double previous_time,
                           double frame_time);
std::string summary_prompt(const VideoCaptionOptions& opts, const std::vector<Cue>& cues, double duration_s);

}  // namespace clipcap
