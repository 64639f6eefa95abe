// Reading JSON config files with errors a user can act on.
//
//   auto j = clipcap::read_json(dir + "/config.json");
//   int64_t d = clipcap::json_require<int64_t>(j, "n_embd", dir + "/config.json");
//   double eps = clipcap::json_value<double>(j, "layer_norm_epsilon", 1e-5, where);
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "common/error.h"

namespace clipcap {

nlohmann::json read_json(const std::string& path);  // Error: missing file / invalid JSON (with line)
// A document in memory; `name` (a file, "stdin") starts the Error of invalid JSON.
nlohmann::json parse_json(const std::string& text, const std::string& name);
void write_json_atomic(const std::string& path, const nlohmann::json& j, int indent = 2);

// Whether v.get<T>() gives v's value. nlohmann converts numbers with static_cast: a float beyond
// an integer type's range is undefined behaviour (found by tests/fuzz/fuzz_model_config), a
// negative number becomes a huge unsigned one, 1.5 becomes 1. Integer types (and vectors of them)
// take only numbers with an integer value in their range; other types are nlohmann's to check.
template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};

template <typename T>
bool json_number_fits(const nlohmann::json& v) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (!v.is_number()) return true;  // a wrong type: nlohmann's get() throws
    using L = std::numeric_limits<T>;
    if (v.is_number_float()) {
      const double d = v.get<double>();
      const double end = std::is_signed_v<T> ? -static_cast<double>(L::min()) : static_cast<double>(L::max()) + 1.0;
      return std::isfinite(d) && d == std::trunc(d) && d >= static_cast<double>(L::min()) && d < end;
    }
    if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(L::max());
    const int64_t i = v.get<int64_t>();
    return i >= static_cast<int64_t>(L::min()) && (i < 0 || static_cast<uint64_t>(i) <= static_cast<uint64_t>(L::max()));
  } else if constexpr (IsVector<T>::value) {
    if (v.is_array())
      for (const auto& x : v)
        if (!json_number_fits<typename T::value_type>(x)) return false;
    return true;
  } else {
    return true;
  }
}

template <typename T>
T json_require(const nlohmann::json& j, const std::string& key, const std::string& where) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null())
    throw Error(where + ": missing field '" + key + "'");
  const nlohmann::json& v = j[key];
  if (!json_number_fits<T>(v))
    throw Error(where + ": field '" + key + "' is " + v.dump() + "; expected " +
                (std::is_unsigned_v<T> ? "a non-negative integer" : "an integer") + " in range");
  try {
    return v.get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(where + ": field '" + key + "' has the wrong type (" + v.dump() + ")");
  }
}

template <typename T>
T json_value(const nlohmann::json& j, const std::string& key, const T& fallback, const std::string& where) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  return json_require<T>(j, key, where);
}

}  // namespace clipcap
