#include "infer/video_list.h"

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"

namespace fs = std::filesystem;

namespace clipcap {
namespace {

std::string lower_extension(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

std::string resolve(const std::string& path, const VideoListOptions& opts) {
  if (opts.root.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(opts.root) / path).string();
}

// RFC 4180 records: quoted fields may hold commas, doubled quotes and newlines. Each record
// remembers the line it started on, for errors.
struct CsvRecord {
  std::vector<std::string> fields;
  int line = 0;
};

std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& name) {
  std::vector<CsvRecord> records;
  CsvRecord rec;
  std::string field;
  bool quoted = false, field_started = false;
  int line = 1;
  rec.line = 1;
  auto end_field = [&] {
    rec.fields.push_back(field);
    field.clear();
    field_started = false;
  };
  auto end_record = [&] {
    end_field();
    const bool blank = rec.fields.size() == 1 && trim(rec.fields[0]).empty();
    if (!blank) records.push_back(std::move(rec));
    rec = CsvRecord{};
    rec.line = line;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        field += c;
      }
    } else if (c == '"' && !field_started) {
      quoted = field_started = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\n') {
      ++line;
      end_record();
    } else if (c != '\r') {
      field += c;
      field_started = true;
    }
  }
  if (quoted) throw Error(name + ":" + std::to_string(rec.line) + ": unterminated quoted field");
  if (field_started || !field.empty() || !rec.fields.empty()) end_record();
  return records;
}

std::vector<std::string> from_csv(const std::string& text, const std::string& name, const VideoListOptions& opts) {
  auto records = parse_csv(text, name);
  if (records.empty()) return {};
  const auto& header = records[0].fields;
  size_t col = header.size();
  std::string columns;
  for (size_t i = 0; i < header.size(); ++i) {
    std::string h = trim(header[i]);
    if (i == 0 && h.rfind("\xEF\xBB\xBF", 0) == 0) h = h.substr(3);  // a BOM from spreadsheet exports
    if (h == opts.path_column) col = i;
    columns += (i ? ", " : "") + h;
  }
  if (col == header.size())
    throw Error(name + ": no column '" + opts.path_column + "' (columns: " + columns + "); choose one with --path-column");
  std::vector<std::string> out;
  for (size_t r = 1; r < records.size(); ++r) {
    const auto& f = records[r].fields;
    const std::string p = col < f.size() ? trim(f[col]) : "";
    if (p.empty()) throw Error(name + ":" + std::to_string(records[r].line) + ": empty '" + opts.path_column + "'");
    out.push_back(resolve(p, opts));
  }
  return out;
}

std::string path_from_json(const nlohmann::json& j, const std::string& where, const VideoListOptions& opts) {
  if (j.is_string()) return j.get<std::string>();
  if (!j.is_object()) throw Error(where + ": expected an object with '" + opts.path_column + "'");
  auto it = j.find(opts.path_column);
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty())
    throw Error(where + ": no string '" + opts.path_column + "' (choose the key with --path-column)");
  return it->get<std::string>();
}

}  // namespace

std::vector<std::string> parse_video_list(const std::string& text, const std::string& name,
                                          const VideoListOptions& opts) {
  const std::string ext = lower_extension(name);
  std::vector<std::string> out;
  if (ext == ".csv") return from_csv(text, name, opts);
  if (ext == ".json") {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw Error(name + ": not valid JSON (" + std::string(e.what()) + ")");
    }
    if (!j.is_array()) throw Error(name + ": expected a JSON array of videos");
    for (size_t i = 0; i < j.size(); ++i)
      out.push_back(resolve(path_from_json(j[i], name + ": item " + std::to_string(i), opts), opts));
    return out;
  }
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    const std::string t = trim(line);
    if (t.empty()) continue;
    if (ext == ".jsonl") {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(t);
      } catch (const nlohmann::json::exception&) {
        throw Error(name + ":" + std::to_string(n) + ": not a JSON object");
      }
      out.push_back(resolve(path_from_json(j, name + ":" + std::to_string(n), opts), opts));
    } else if (t[0] != '#') {
      out.push_back(resolve(t, opts));
    }
  }
  return out;
}

std::vector<std::string> read_video_list(const std::string& list_path, const VideoListOptions& opts) {
  std::error_code ec;
  if (!fs::exists(list_path, ec)) throw Error(list_path + ": no such file");
  return parse_video_list(read_file(list_path), list_path, opts);
}

std::vector<std::string> unique_paths(const std::vector<std::string>& paths) {
  std::set<std::string> seen;
  std::vector<std::string> out;
  for (const auto& p : paths)
    if (seen.insert(p).second) out.push_back(p);
  return out;
}

}  // namespace clipcap
