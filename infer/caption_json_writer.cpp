#include "infer/caption_json_writer.h"

#include <nlohmann/json.hpp>

#include "backend/caption_backend.h"
#include "common/atomic_file.h"

namespace clipcap {

nlohmann::ordered_json caption_json(const std::vector<Cue>& cues, const std::string& lang) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const Cue& c : cues) {
    list.push_back({{"start", format_timestamp(c.start_s, ',')},
                    {"end", format_timestamp(c.end_s, ',')},
                    {"lang", lang},
                    {"text", c.text},
                    {"start_s", rounded_seconds(c.start_s)},
                    {"end_s", rounded_seconds(c.end_s)},
                    {"frame_s", rounded_seconds(c.frame_s)}});
    if (c.rerank.candidates > 0) list.back()["rerank"] = rerank_json(c.rerank);
  }
  return list;
}

void write_caption_json(const std::string& path, const std::vector<Cue>& cues, const std::string& lang) {
  write_file_atomic(path, caption_json(cues, lang).dump(2) + "\n");
}

}  // namespace clipcap
