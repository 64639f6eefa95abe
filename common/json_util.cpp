#include "common/json_util.h"

#include "common/atomic_file.h"

namespace clipcap {

nlohmann::json parse_json(const std::string& text, const std::string& name) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based; report a line so the user can open the file there.
    size_t upto = std::min<size_t>(e.byte ? e.byte - 1 : 0, text.size());
    size_t line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(upto), '\n');
    throw Error(name + ": invalid JSON near line " + std::to_string(line));
  } catch (const nlohmann::json::exception&) {
    // out_of_range.406, which even a well-formed document raises: a number beyond a double's range.
    throw Error(name + ": invalid JSON (a number out of range)");
  }
}

nlohmann::json read_json(const std::string& path) { return parse_json(read_file(path), path); }

void write_json_atomic(const std::string& path, const nlohmann::json& j, int indent) {
  write_file_atomic(path, j.dump(indent) + "\n");
}

}  // namespace clipcap
