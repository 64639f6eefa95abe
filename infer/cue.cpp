#include "infer/cue.h"

#include <cmath>
#include <cstdio>

namespace clipcap {

int64_t round_ms(double seconds) {
  if (!(seconds > 0)) return 0;
  return std::llround(seconds * 1000.0);
}

std::string format_timestamp(double seconds, char ms_separator) {
  int64_t ms = round_ms(seconds);
  const int64_t h = ms / 3'600'000, m = ms / 60'000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld%c%03lld", static_cast<long long>(h), static_cast<long long>(m),
                static_cast<long long>(s), ms_separator, static_cast<long long>(frac));
  return buf;
}

double rounded_seconds(double seconds) { return static_cast<double>(round_ms(seconds)) / 1000.0; }

std::string one_line(const std::string& text) {
  std::string out = text;
  for (char& c : out)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return out;
}

std::vector<Cue> merge_adjacent(const std::vector<Cue>& cues) {
  std::vector<Cue> out;
  for (const Cue& c : cues) {
    const bool empty = round_ms(c.end_s) <= round_ms(c.start_s);
    if (!out.empty() && (empty || c.text == out.back().text)) {
      out.back().end_s = c.end_s;
      continue;
    }
    out.push_back(c);
  }
  // A first cue that rounded to nothing gives its span to the next one.
  if (out.size() >= 2 && round_ms(out[0].end_s) <= round_ms(out[0].start_s)) {
    out[1].start_s = out[0].start_s;
    out.erase(out.begin());
  }
  return out;
}

}  // namespace clipcap
