#include "infer/video_prompts.h"

#include "common/prompt_template.h"
#include "common/strings.h"

namespace clipcap {

namespace {

const char* kGridPrompt =
    "The image shows {frames} frames of a video, in time order from top to bottom and left to right. "
    "Describe the video in detail: the scene, the subjects and what happens.";
const char* kFirstPrompt = "Describe this video frame in detail.";
const char* kSlidingPrompt =
    "The two images are frames of a video, at {previous_time} s and at {frame_time} s. The first was described as: "
    "\"{previous_caption}\". Describe in one or two sentences what changed between them.";
const char* kSummaryPrompt =
    "These are descriptions of a video's frames, with their times in seconds:\n{frame_captions}\n"
    "Write one paragraph that describes the whole video.";

const std::vector<std::string> kFrameFields = {"index", "start", "end", "frame_time"};
const std::vector<std::string> kGridFields = {"frames", "duration", "frame_times"};
const std::vector<std::string> kFirstFields = {"frame_time"};
const std::vector<std::string> kSlidingFields = {"previous_caption", "previous_time", "frame_time"};
const std::vector<std::string> kSummaryFields = {"frame_captions", "frames", "duration"};

std::string t3(double s) { return format_number(s, "%.3f"); }

std::string main_template(const VideoCaptionOptions& o) {
  if (!o.prompts.main.empty()) return o.prompts.main;
  return o.mode == CaptionMode::kGrid ? kGridPrompt : o.mode == CaptionMode::kSliding ? kSlidingPrompt : "";
}
std::string first_template(const VideoCaptionOptions& o) { return o.prompts.first.empty() ? kFirstPrompt : o.prompts.first; }
std::string summary_template(const VideoCaptionOptions& o) {
  return o.prompts.summary.empty() ? kSummaryPrompt : o.prompts.summary;
}

}  // namespace

void check_video_prompts(const VideoCaptionOptions& o) {
  const auto& main_fields =
      o.mode == CaptionMode::kGrid ? kGridFields : o.mode == CaptionMode::kSliding ? kSlidingFields : kFrameFields;
  check_prompt_template(main_template(o), main_fields, "--prompt (--mode " + caption_mode_name(o.mode) + ")");
  check_prompt_template(first_template(o), kFirstFields, "--first-prompt");
  check_prompt_template(summary_template(o), kSummaryFields, "--summary-prompt");
}

nlohmann::json video_prompt_record(const VideoCaptionOptions& o) {
  nlohmann::json j = nlohmann::json::object();
  if (!main_template(o).empty()) j["prompt"] = main_template(o);
  if (o.mode == CaptionMode::kSliding) j["first_prompt"] = first_template(o);
  if (!o.summary.url.empty()) j["summary_prompt"] = summary_template(o);
  return j;
}

std::string frame_prompt(const VideoCaptionOptions& o, size_t index, const FrameSegment& seg, double frame_time) {
  return fill_prompt_template(main_template(o), {{"index", std::to_string(index)},
                                                 {"start", t3(seg.start_s)},
                                                 {"end", t3(seg.end_s)},
                                                 {"frame_time", t3(frame_time)}});
}

std::string grid_prompt(const VideoCaptionOptions& o, const std::vector<double>& frame_times, double duration_s) {
  std::string times;
  for (double t : frame_times) times += (times.empty() ? "" : ", ") + t3(t);
  return fill_prompt_template(main_template(o), {{"frames", std::to_string(frame_times.size())},
                                                 {"duration", t3(duration_s)},
                                                 {"frame_times", times}});
}

std::string sliding_first_prompt(const VideoCaptionOptions& o, double frame_time) {
  return fill_prompt_template(first_template(o), {{"frame_time", t3(frame_time)}});
}

std::string sliding_prompt(const VideoCaptionOptions& o, const std::string& previous_caption, double previous_time,
                           double frame_time) {
  return fill_prompt_template(main_template(o), {{"previous_caption", previous_caption},
                                                 {"previous_time", t3(previous_time)},
                                                 {"frame_time", t3(frame_time)}});
}

std::string summary_prompt(const VideoCaptionOptions& o, const std::vector<Cue>& cues, double duration_s) {
  std::string lines;
  for (const Cue& c : cues) lines += "[" + t3(c.start_s) + "-" + t3(c.end_s) + " s] " + c.text + "\n";
  if (!lines.empty()) lines.pop_back();
  return fill_prompt_template(summary_template(o), {{"frame_captions", lines},
                                                    {"frames", std::to_string(cues.size())},
                                                    {"duration", t3(duration_s)}});
}

}  // namespace clipcap
