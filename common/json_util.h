// Reading JSON config files with errors a user can act on.
//
//   auto j = clipcap::read_json(dir + "/config.json");
//   int64_t d = clipcap::json_require<int64_t>(j, "n_embd", dir + "/config.json");
//   double eps = clipcap::json_value<double>(j, "layer_norm_epsilon", 1e-5, where);
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"

namespace clipcap {

nlohmann::json read_json(const std::string& path);  // Error: missing file / invalid JSON (with line)
// A document in memory; `name` (a file, "stdin") starts the Error of invalid JSON.
nlohmann::json parse_json(const std::string& text, const std::string& name);
void write_json_atomic(const std::string& path, const nlohmann::json& j, int indent = 2);

template <typename T>
T json_require(const nlohmann::json& j, const std::string& key, const std::string& where) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null())
    throw Error(where + ": missing field '" + key + "'");
  try {
    return j[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(where + ": field '" + key + "' has the wrong type (" + j[key].dump() + ")");
  }
}

template <typename T>
T json_value(const nlohmann::json& j, const std::string& key, const T& fallback, const std::string& where) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  return json_require<T>(j, key, where);
}

}  // namespace clipcap
