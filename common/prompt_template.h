// Prompt templates: text with named fields in braces, filled per request. The video pipeline's
// remote modes use them (infer/video_prompts.h); a run stores its templates so it can be repeated.
//
//   clipcap::check_prompt_template(t, {"previous_caption", "frame_time"}, "--prompt");   // Error
//   std::string p = clipcap::fill_prompt_template(t, {{"previous_caption", "A dog."}, {"frame_time", "2.0"}});
//
// "{name}" is replaced by the field's value; "{{" and "}}" are literal braces.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace clipcap {

// Error "<what>: unknown field {x} (fields: a, b)" or "<what>: unmatched brace at character N".
void check_prompt_template(const std::string& tmpl, const std::vector<std::string>& fields, const std::string& what);

// Fields missing from `values` are left as written (check_prompt_template first).
std::string fill_prompt_template(const std::string& tmpl, const std::map<std::string, std::string>& values);

}  // namespace clipcap
