#include "infer/srt_writer.h"

#include "common/atomic_file.h"

namespace clipcap {

std::string srt_text(const std::vector<Cue>& cues) {
  std::string out;
  int n = 0;
  for (const Cue& c : cues) {
    const std::string text = one_line(c.text);
    out += std::to_string(++n) + "\n";
    out += format_timestamp(c.start_s, ',') + " --> " + format_timestamp(c.end_s, ',') + "\n";
    out += (text.find_first_not_of(' ') == std::string::npos ? "(no caption)" : text) + "\n\n";
  }
  return out;
}

void write_srt(const std::string& path, const std::vector<Cue>& cues) { write_file_atomic(path, srt_text(cues)); }

}  // namespace clipcap
