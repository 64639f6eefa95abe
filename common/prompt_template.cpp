#include "common/prompt_template.h"

#include <algorithm>
#include <functional>

#include "common/error.h"

namespace clipcap {

namespace {

// Walks the template: literal text to `text`, each field name to `field`; false at an unmatched
// brace (its position in `where`).
bool scan(const std::string& t, const std::function<void(const std::string&)>& text,
          const std::function<void(const std::string&)>& field, size_t& where) {
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, 2, "{{") == 0 || t.compare(i, 2, "}}") == 0) {
      text(t.substr(i, 1));
      i += 2;
    } else if (t[i] == '{') {
      const size_t close = t.find('}', i);
      if (close == std::string::npos || t.find('{', i + 1) < close) {
        where = i;
        return false;
      }
      field(t.substr(i + 1, close - i - 1));
      i = close + 1;
    } else if (t[i] == '}') {
      where = i;
      return false;
    } else {
      const size_t next = std::min(t.find('{', i), t.find('}', i));
      text(t.substr(i, next == std::string::npos ? std::string::npos : next - i));
      i = next == std::string::npos ? t.size() : next;
    }
  }
  return true;
}

}  // namespace

void check_prompt_template(const std::string& tmpl, const std::vector<std::string>& fields, const std::string& what) {
  std::string unknown;
  size_t where = 0;
  const bool ok = scan(
      tmpl, [](const std::string&) {},
      [&](const std::string& name) {
        if (unknown.empty() && std::find(fields.begin(), fields.end(), name) == fields.end()) unknown = name;
      },
      where);
  if (!ok)
    throw Error(what + ": unmatched brace at character " + std::to_string(where + 1) +
                " (write {{ and }} for literal braces)");
  if (!unknown.empty()) {
    std::string known;
    for (const auto& f : fields) known += (known.empty() ? "{" : ", {") + f + "}";
    throw Error(what + ": unknown field {" + unknown + "} (" + (known.empty() ? "this prompt has no fields" : "fields: " + known) + ")");
  }
}

std::string fill_prompt_template(const std::string& tmpl, const std::map<std::string, std::string>& values) {
  std::string out;
  size_t where = 0;
  const bool ok = scan(
      tmpl, [&](const std::string& s) { out += s; },
      [&](const std::string& name) {
        const auto it = values.find(name);
        out += it == values.end() ? "{" + name + "}" : it->second;
      },
      where);
  return ok ? out : tmpl;
}

}  // namespace clipcap
