#include "eval/prediction_records.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_util.h"
#include "eval/clip_score.h"

namespace clipcap {
namespace {

std::vector<std::string> references_of(const nlohmann::json& j, const std::string& where) {
  if (!j.contains("references")) throw Error(where + ": missing field 'references'");
  const nlohmann::json& r = j["references"];
  std::vector<std::string> refs;
  if (r.is_string()) refs.push_back(r.get<std::string>());
  else if (r.is_array())
    for (const auto& x : r) {
      if (!x.is_string()) throw Error(where + ": 'references' holds a non-string (" + x.dump() + ")");
      refs.push_back(x.get<std::string>());
    }
  else throw Error(where + ": 'references' must be a string or a list of strings");
  if (refs.empty()) throw Error(where + ": 'references' is empty");
  return refs;
}

// COCO ids are usually integers, sometimes strings: one key for both.
std::string id_key(const nlohmann::json& id, const std::string& where) {
  if (id.is_number_integer()) return std::to_string(id.get<int64_t>());
  if (id.is_string()) return id.get<std::string>();
  throw Error(where + ": image id must be an integer or a string (" + id.dump() + ")");
}

}  // namespace

std::vector<PredictionRecord> read_predictions_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open");
  std::vector<PredictionRecord> records;
  std::set<std::string> seen;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(where + ": not valid JSON");
    }
    if (!j.is_object()) throw Error(where + ": not a JSON object");
    PredictionRecord r;
    r.image = json_require<std::string>(j, "image", where);
    r.prediction = json_require<std::string>(j, "prediction", where);
    r.references = references_of(j, where);
    if (!seen.insert(r.image).second) throw Error(where + ": image '" + r.image + "' appears more than once");
    records.push_back(std::move(r));
  }
  if (records.empty()) throw Error(path + ": no predictions");
  return records;
}

std::vector<PredictionRecord> read_coco_results(const std::string& results_path, const std::string& annotations_path) {
  const nlohmann::json results = read_json(results_path);
  const nlohmann::json annotations = read_json(annotations_path);
  if (!results.is_array()) throw Error(results_path + ": expected a JSON list of {image_id, caption}");
  std::unordered_map<std::string, std::string> predicted;  // id -> caption
  for (size_t i = 0; i < results.size(); ++i) {
    const std::string where = results_path + ": entry " + std::to_string(i);
    if (!results[i].is_object() || !results[i].contains("image_id")) throw Error(where + ": missing field 'image_id'");
    const std::string id = id_key(results[i]["image_id"], where);
    if (!predicted.emplace(id, json_require<std::string>(results[i], "caption", where)).second)
      throw Error(where + ": image_id " + id + " has more than one caption");
  }
  if (predicted.empty()) throw Error(results_path + ": no results");
  if (!annotations.is_object() || !annotations.contains("annotations") || !annotations["annotations"].is_array())
    throw Error(annotations_path + ": expected {\"images\": [...], \"annotations\": [...]}");

  std::vector<std::string> order;  // the annotation file's image order
  std::unordered_map<std::string, std::string> file_names;
  if (annotations.contains("images") && annotations["images"].is_array())
    for (size_t i = 0; i < annotations["images"].size(); ++i) {
      const auto& img = annotations["images"][i];
      const std::string where = annotations_path + ": images[" + std::to_string(i) + "]";
      if (!img.is_object() || !img.contains("id")) throw Error(where + ": missing field 'id'");
      const std::string id = id_key(img["id"], where);
      order.push_back(id);
      file_names[id] = json_value<std::string>(img, "file_name", "", where);
    }
  std::unordered_map<std::string, std::vector<std::string>> refs;
  for (size_t i = 0; i < annotations["annotations"].size(); ++i) {
    const auto& a = annotations["annotations"][i];
    const std::string where = annotations_path + ": annotations[" + std::to_string(i) + "]";
    if (!a.is_object() || !a.contains("image_id")) throw Error(where + ": missing field 'image_id'");
    const std::string id = id_key(a["image_id"], where);
    if (!refs.count(id) && !file_names.count(id)) order.push_back(id);  // no "images" list
    refs[id].push_back(json_require<std::string>(a, "caption", where));
  }

  std::vector<PredictionRecord> records;
  std::set<std::string> listed;
  for (const std::string& id : order) {
    const auto p = predicted.find(id);
    if (p == predicted.end() || !listed.insert(id).second) continue;
    const auto r = refs.find(id);
    if (r == refs.end()) throw Error(annotations_path + ": image " + id + " has no annotated captions");
    const std::string& name = file_names[id];
    records.push_back({name.empty() ? id : name, p->second, r->second});
  }
  for (const auto& [id, caption] : predicted)
    if (!listed.count(id))
      throw Error(results_path + ": image_id " + id + " is not in " + annotations_path +
                  " (results do not correspond to the annotations)");
  return records;
}

std::vector<ScoredItem> scored_items(const std::vector<PredictionRecord>& records) {
  std::vector<ScoredItem> items;
  items.reserve(records.size());
  for (const auto& r : records) items.push_back({r.image, r.prediction, r.references});
  return items;
}

void write_predictions_jsonl(const std::string& path, const std::vector<PredictionRecord>& records,
                             const CaptionScores& scores, const ClipScoreResult* clip) {
  AtomicFile out(path);
  for (size_t i = 0; i < records.size(); ++i) {
    const ItemScores& s = scores.items.at(i);
    nlohmann::json sc = nlohmann::json::object();
    for (size_t k = 0; k < s.values.size(); ++k) sc[caption_metric_names()[k]] = s.values[k];
    if (clip) {
      sc["CLIPScore"] = clip->per_image_clip_score.at(i);
      if (!clip->per_image_ref_clip_score.empty()) sc["RefCLIPScore"] = clip->per_image_ref_clip_score.at(i);
    }
    nlohmann::json line = {{"image", records[i].image},
                           {"prediction", records[i].prediction},
                           {"references", records[i].references},
                           {"scores", sc}};
    if (!records[i].rerank.is_null()) line["rerank"] = records[i].rerank;
    out.stream() << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  out.commit();
}

}  // namespace clipcap
