// A struct's options, declared once: each field's JSON key, command-line flags, help text and the
// check its value must pass. One table drives validation, JSON and the command-line flags
// (common/cli_flags.h add_table_flags), so a new option is one row.
//
//   OptionTable<DecodeOptions> t("decoding options");
//   t.field("max_len", "--max-len", "most tokens per caption", &DecodeOptions::max_len)
//       .check([](const DecodeOptions& o) { return o.max_len >= 1 ? "" : "must be >= 1"; });
//   t.validate(opts);                    // Error "decoding options: max_len (--max-len) must be >= 1, got 0"
//   nlohmann::json j = t.to_json(opts);  // every field by key
//   opts = t.from_json(j, "model/config.json: decoding", defaults);   // missing keys keep defaults
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "common/error.h"
#include "common/json_util.h"

namespace clipcap {

template <typename T>
class OptionTable {
 public:
  using Member = std::variant<int T::*, int64_t T::*, uint64_t T::*, float T::*, double T::*, bool T::*,
                              std::string T::*>;
  // "" when the value is fine, else what is wrong ("must be >= 1"); the value itself is appended.
  using Check = std::function<std::string(const T&)>;

  struct Field {
    std::string key;    // JSON key, and the name in messages
    std::string flags;  // CLI11 names, e.g. "-b,--beam-size"; "" = not a command-line flag
    std::string help;
    Member member;
    std::vector<std::string> choices;  // strings only: the allowed values ("" = any)
    Check check;

    // The longest flag name ("--beam-size" of "-b,--beam-size,--beam" picks the first long one).
    std::string flag() const {
      std::stringstream in(flags);
      for (std::string name; std::getline(in, name, ',');)
        if (name.rfind("--", 0) == 0) return name;
      return flags;
    }
    std::string value_text(const T& obj) const {
      return std::visit([&](auto m) { return nlohmann::json(obj.*m).dump(); }, member);
    }
  };

  explicit OptionTable(std::string what) : what_(std::move(what)) {}

  template <typename V>
  OptionTable& field(std::string key, std::string flags, std::string help, V T::*member) {
    fields_.push_back(Field{std::move(key), std::move(flags), std::move(help), Member(member), {}, nullptr});
    return *this;
  }
  // Adds a check to the field declared last.
  OptionTable& check(Check c) {
    fields_.back().check = std::move(c);
    return *this;
  }
  OptionTable& choices(std::vector<std::string> values) {
    fields_.back().choices = std::move(values);
    return *this;
  }
  // A check over several fields (e.g. two options that exclude each other); message as is.
  OptionTable& rule(Check c) {
    rules_.push_back(std::move(c));
    return *this;
  }

  const std::vector<Field>& fields() const { return fields_; }
  const std::string& what() const { return what_; }

  // Error "<what>: <key> (<flag>) <problem>, got <value>" for the first field out of range.
  void validate(const T& obj) const {
    for (const Field& f : fields_) {
      std::string problem;
      if (!f.choices.empty()) {
        const std::string& v = obj.*std::get<std::string T::*>(f.member);
        bool known = false;
        for (const auto& c : f.choices) known |= c == v;
        if (!known) problem = "must be one of " + join(f.choices);
      }
      if (problem.empty() && f.check) problem = f.check(obj);
      if (!problem.empty()) {
        const std::string flag = f.flag();
        throw Error(what_ + ": " + f.key + (flag.empty() ? "" : " (" + flag + ")") + " " + problem + ", got " +
                    f.value_text(obj));
      }
    }
    for (const Check& r : rules_)
      if (std::string problem = r(obj); !problem.empty()) throw Error(what_ + ": " + problem);
  }

  nlohmann::json to_json(const T& obj) const {
    nlohmann::json j = nlohmann::json::object();
    for (const Field& f : fields_) std::visit([&](auto m) { j[f.key] = obj.*m; }, f.member);
    return j;
  }

  // Keys of j set their fields (type-checked, Error naming `where` and the key); missing keys
  // keep `defaults`' values. The result is validated.
  T from_json(const nlohmann::json& j, const std::string& where, const T& defaults) const {
    T obj = defaults;
    if (j.is_null()) return obj;
    if (!j.is_object()) throw Error(where + ": must be an object");
    for (const Field& f : fields_)
      std::visit([&](auto m) { obj.*m = json_value(j, f.key, obj.*m, where); }, f.member);
    try {
      validate(obj);
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
    return obj;
  }

 private:
  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  }

  std::string what_;
  std::vector<Field> fields_;
  std::vector<Check> rules_;
};

}  // namespace clipcap
