#include "infer/vtt_writer.h"

#include "common/atomic_file.h"

namespace clipcap {
namespace {

std::string escape_vtt(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

}  // namespace

std::string vtt_text(const std::vector<Cue>& cues) {
  std::string out = "WEBVTT\n\n";
  for (const Cue& c : cues) {
    const std::string text = one_line(c.text);
    out += format_timestamp(c.start_s, '.') + " --> " + format_timestamp(c.end_s, '.') + "\n";
    out += (text.find_first_not_of(' ') == std::string::npos ? "(no caption)" : escape_vtt(text)) + "\n\n";
  }
  return out;
}

void write_vtt(const std::string& path, const std::vector<Cue>& cues) { write_file_atomic(path, vtt_text(cues)); }

}  // namespace clipcap
