#include "data/dataset_sources.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <unordered_map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_util.h"

namespace clipcap {

using nlohmann::json;

int64_t CaptionSource::caption_count() const {
  int64_t n = 0;
  for (const auto& item : items) n += static_cast<int64_t>(item.captions.size());
  return n;
}

std::string normalise_split(const std::string& name) {
  if (name == "train" || name == "restval") return "train";
  if (name == "val" || name == "valid" || name == "validation" || name == "dev") return "val";
  if (name == "test") return "test";
  return "";
}

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

std::string ltrim(const std::string& s) {
  size_t b = 0;
  while (b < s.size() && is_space(s[b])) ++b;
  return s.substr(b);
}

std::string trim(const std::string& s) {
  std::string t = ltrim(s);
  while (!t.empty() && is_space(t.back())) t.pop_back();
  return t;
}

// Groups rows by image, keeping first-appearance order of images and file order of captions.
// Where the first byte that is not part of well-formed UTF-8 is, or npos (overlong forms,
// surrogates and code points above U+10FFFF count as malformed, as in JSON's rules).
size_t invalid_utf8_at(const std::string& s) {
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = b[i];
    size_t len = 0;
    uint32_t cp = 0, min = 0;
    if (c < 0x80) len = 1, cp = c;
    else if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
    else return i;
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((b[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (b[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string::npos;
}

class ItemCollector {
 public:
  ItemCollector(CaptionSource& out, const SourceOptions& opts) : out_(out), opts_(opts) {}

  void add(const std::string& image, std::string caption, const std::string& split_name, const std::string& row) {
    for (const auto& [text, what] : {std::pair{&image, "image path"}, {&caption, "caption"}, {&split_name, "split"}}) {
      const size_t at = invalid_utf8_at(*text);
      if (at == std::string::npos) continue;
      char byte[8];
      std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>((*text)[at]));
      return problem(row, std::string("not valid UTF-8: byte ") + byte + " at byte " + std::to_string(at + 1) + " of the " +
                              what + " (convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8)");
    }
    if (image.empty()) return problem(row, "empty image path");
    if (caption.empty()) return problem(row, "empty caption");
    if (opts_.lowercase)
      for (char& c : caption) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string split;
    if (!split_name.empty()) {
      split = normalise_split(split_name);
      if (split.empty())
        problem(row, "unknown split '" + split_name + "' (expected train, restval, val or test): split decided by --seed");
    }
    auto [it, fresh] = index_.emplace(image, out_.items.size());
    if (fresh) out_.items.push_back({image, {}, split});
    SourceItem& item = out_.items[it->second];
    if (!split.empty() && item.split.empty()) {
      item.split = split;
    } else if (!split.empty() && item.split != split) {
      return problem(row, "image '" + image + "' is in split '" + item.split + "' on an earlier row, here '" + split +
                              "': caption dropped");
    }
    item.captions.push_back(std::move(caption));
  }

  void problem(const std::string& row, const std::string& reason) { out_.problems.push_back({row, reason}); }

 private:
  CaptionSource& out_;
  const SourceOptions& opts_;
  std::unordered_map<std::string, size_t> index_;
};

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = nl + 1;
  }
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// "4   A dog runs ." -> "A dog runs .": the comment number, whitespace, then the caption.
bool recover_number_and_caption(const std::string& rest, std::string& caption) {
  size_t p = 0;
  while (p < rest.size() && is_space(rest[p])) ++p;
  size_t digits = p;
  while (p < rest.size() && std::isdigit(static_cast<unsigned char>(rest[p]))) ++p;
  if (p == digits || p >= rest.size() || !is_space(rest[p])) return false;
  caption = trim(rest.substr(p));
  return !caption.empty();
}

void parse_flickr(const std::string& text, const std::string& name, const SourceOptions& opts, CaptionSource& out,
                  ItemCollector& items) {
  auto lines = split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const std::string row = name + ":" + std::to_string(i + 1);
    if (trim(line).empty()) continue;
    if (i == 0 && line.rfind("image_name", 0) == 0) continue;  // header
    size_t bar1 = line.find('|');
    if (bar1 == std::string::npos) {
      items.problem(row, "no '|' separator (expected 'image_name| comment_number| comment')");
      continue;
    }
    std::string image = trim(line.substr(0, bar1));
    std::string rest = line.substr(bar1 + 1);
    size_t bar2 = rest.find('|');
    std::string caption;
    if (bar2 != std::string::npos) {
      caption = ltrim(rest.substr(bar2 + 1));
    } else if (recover_number_and_caption(rest, caption)) {
      out.recovered.push_back({row, "no second '|': caption recovered after the comment number"});
    } else {
      items.problem(row, "no second '|' and no 'number caption' after the first: row cannot be recovered");
      continue;
    }
    items.add(image, caption, "", row);
  }
}

const json* find_array(const json& root, const char* key, const std::string& name) {
  if (!root.is_object() || !root.contains(key) || !root[key].is_array())
    throw Error(name + ": no '" + key + "' array (is --format right?)");
  return &root[key];
}


std::string string_field(const json& obj, const std::string& key) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return "";
  return obj[key].get<std::string>();
}

void parse_karpathy(const std::string& text, const std::string& name, const SourceOptions& opts, CaptionSource& out,
                    ItemCollector& items) {
  json root = parse_json(text, name);
  const json& images = *find_array(root, "images", name);
  for (size_t i = 0; i < images.size(); ++i) {
    const json& img = images[i];
    const std::string row = name + ": images[" + std::to_string(i) + "]";
    std::string file = string_field(img, "filename");
    if (file.empty()) {
      items.problem(row, "no 'filename'");
      continue;
    }
    std::string dir = string_field(img, "filepath");
    std::string path = dir.empty() ? file : dir + "/" + file;
    std::string split = string_field(img, "split");
    if (!img.contains("sentences") || !img["sentences"].is_array() || img["sentences"].empty()) {
      items.problem(row, "image '" + path + "' has no sentences");
      continue;
    }
    for (const json& s : img["sentences"]) {
      std::string raw = string_field(s, "raw");
      if (raw.empty() && s.contains("tokens") && s["tokens"].is_array()) {
        for (const json& t : s["tokens"])
          if (t.is_string()) raw += (raw.empty() ? "" : " ") + t.get<std::string>();
      }
      items.add(path, trim(raw), split, row);
    }
  }
}

void parse_coco(const std::string& text, const std::string& name, const SourceOptions& opts, CaptionSource& out,
                ItemCollector& items) {
  json root = parse_json(text, name);
  const json& images = *find_array(root, "images", name);
  const json& annotations = *find_array(root, "annotations", name);
  // image id -> file and its captions, so captions follow the images array's order.
  std::unordered_map<std::string, size_t> by_id;
  std::vector<std::pair<std::string, std::vector<std::string>>> files;
  for (size_t i = 0; i < images.size(); ++i) {
    const json& img = images[i];
    std::string file = string_field(img, "file_name");
    if (file.empty() || !img.contains("id")) {
      items.problem(name + ": images[" + std::to_string(i) + "]", "no 'id' or 'file_name'");
      continue;
    }
    by_id.emplace(img["id"].dump(), files.size());
    files.push_back({file, {}});
  }
  for (size_t i = 0; i < annotations.size(); ++i) {
    const json& a = annotations[i];
    const std::string row = name + ": annotations[" + std::to_string(i) + "]";
    if (!a.is_object() || !a.contains("image_id")) {
      items.problem(row, "no 'image_id'");
      continue;
    }
    auto it = by_id.find(a["image_id"].dump());
    if (it == by_id.end()) {
      items.problem(row, "image_id " + a["image_id"].dump() + " is not in 'images'");
      continue;
    }
    std::string caption = trim(string_field(a, "caption"));
    if (caption.empty()) {
      items.problem(row, "no caption");
      continue;
    }
    files[it->second].second.push_back(caption);
  }
  for (auto& [file, captions] : files) {
    if (captions.empty()) {
      items.problem(name + ": images '" + file + "'", "image has no annotations");
      continue;
    }
    for (auto& c : captions) items.add(file, c, "", name + ": image '" + file + "'");
  }
  (void)out;
}

void add_record(ItemCollector& items, const std::string& image, const json& caption, const std::string& split,
                const std::string& row, const SourceOptions& opts) {
  if (image.empty()) return items.problem(row, "no '" + opts.image_column + "' value");
  if (caption.is_array()) {
    if (caption.empty()) return items.problem(row, "empty '" + opts.caption_column + "' list");
    for (const json& c : caption) {
      if (!c.is_string()) return items.problem(row, "'" + opts.caption_column + "' holds a non-string");
      items.add(image, trim(c.get<std::string>()), split, row);
    }
    return;
  }
  if (!caption.is_string()) return items.problem(row, "no '" + opts.caption_column + "' text");
  items.add(image, trim(caption.get<std::string>()), split, row);
}

void parse_jsonl(const std::string& text, const std::string& name, const SourceOptions& opts, CaptionSource& out,
                 ItemCollector& items) {
  auto lines = split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string row = name + ":" + std::to_string(i + 1);
    if (trim(lines[i]).empty()) continue;
    json obj;
    try {
      obj = json::parse(lines[i]);
    } catch (const json::exception&) {  // parse_error, or out_of_range for a huge number
      items.problem(row, "invalid JSON");
      continue;
    }
    if (!obj.is_object()) {
      items.problem(row, "not a JSON object");
      continue;
    }
    json caption = obj.contains(opts.caption_column) ? obj[opts.caption_column] : json();
    std::string split = opts.split_column.empty() ? "" : string_field(obj, opts.split_column);
    add_record(items, trim(string_field(obj, opts.image_column)), caption, split, row, opts);
  }
}

// RFC 4180: quoted fields may hold separators, doubled quotes and newlines. Each record carries
// the line it starts on.
struct CsvRecord {
  size_t line = 0;
  std::vector<std::string> fields;
  bool unterminated = false;  // a quote opened on this line never closes: the record is not used
};

// From byte `from` (line `first_line`) to the end. A quote that never closes would swallow every
// row after it into one field: that record is marked unterminated and parsing resumes on the
// next line, so only the broken row is lost.
std::vector<CsvRecord> parse_csv_records(const std::string& text, char sep, size_t from = 0, size_t first_line = 1) {
  std::vector<CsvRecord> records;
  CsvRecord rec{first_line, {}};
  std::string field;
  bool quoted = false, any = false;
  size_t line = first_line, record_start = from;
  for (size_t i = from; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
      continue;
    }
    if (c == '"' && field.empty()) {
      quoted = any = true;
    } else if (c == sep) {
      rec.fields.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        rec.fields.push_back(std::move(field));
        records.push_back(std::move(rec));
      }
      field.clear();
      any = false;
      ++line;
      rec = CsvRecord{line, {}};
      record_start = i + 1;
    } else {
      field.push_back(c);
      any = true;
    }
  }
  if (quoted) {
    const size_t next_line = text.find('\n', record_start);
    records.push_back({rec.line, {}, true});
    if (next_line == std::string::npos) return records;
    auto rest = parse_csv_records(text, sep, next_line + 1, rec.line + 1);
    records.insert(records.end(), std::make_move_iterator(rest.begin()), std::make_move_iterator(rest.end()));
    return records;
  }
  if (any || !field.empty()) {
    rec.fields.push_back(std::move(field));
    records.push_back(std::move(rec));
  }
  return records;
}

void parse_csv(const std::string& text, const std::string& name, const SourceOptions& opts, CaptionSource& out,
               ItemCollector& items) {
  auto records = parse_csv_records(text, opts.csv_separator);
  if (records.empty()) throw Error(name + ": empty CSV file (expected a header row)");
  const auto& header = records[0].fields;
  auto column = [&](const std::string& key, bool required) -> int {
    for (size_t i = 0; i < header.size(); ++i)
      if (trim(header[i]) == key) return static_cast<int>(i);
    if (required) {
      std::string names;
      for (const auto& h : header) names += (names.empty() ? "" : ", ") + trim(h);
      throw Error(name + ": header has no column '" + key + "' (columns: " + names + ")");
    }
    return -1;
  };
  int image_col = column(opts.image_column, true);
  int caption_col = column(opts.caption_column, true);
  int split_col = opts.split_column.empty() ? -1 : column(opts.split_column, true);
  for (size_t r = 1; r < records.size(); ++r) {
    const auto& f = records[r].fields;
    const std::string row = name + ":" + std::to_string(records[r].line);
    if (records[r].unterminated) {
      items.problem(row, "a quoted field opens on this line and never closes (an unmatched '\"'): row skipped");
      continue;
    }
    int need = std::max({image_col, caption_col, split_col});
    if (static_cast<int>(f.size()) <= need) {
      items.problem(row, "has " + std::to_string(f.size()) + " fields, the header " + std::to_string(header.size()));
      continue;
    }
    std::string split = split_col >= 0 ? trim(f[split_col]) : "";
    add_record(items, trim(f[image_col]), json(f[caption_col]), split, row, opts);
  }
}

}  // namespace

namespace {

// The input formats, one row each: --format's name and how the text is read.
struct CaptionFormat {
  const char* name;
  void (*parse)(const std::string& text, const std::string& name, const SourceOptions& opts, CaptionSource& out,
                ItemCollector& items);
};

const std::vector<CaptionFormat>& caption_formats() {
  static const std::vector<CaptionFormat> all = {
      {"flickr", parse_flickr}, {"karpathy", parse_karpathy}, {"coco", parse_coco},
      {"jsonl", parse_jsonl},   {"csv", parse_csv},
  };
  return all;
}

}  // namespace

std::string caption_format_names() {
  std::string names;
  for (const auto& f : caption_formats()) names += (names.empty() ? "" : " | ") + std::string(f.name);
  return names;
}

CaptionSource parse_caption_source(const std::string& raw, const std::string& name, const SourceOptions& opts) {
  // A byte-order mark (Excel's "CSV UTF-8") is not part of the first header name.
  const std::string text = raw.rfind("\xEF\xBB\xBF", 0) == 0 ? raw.substr(3) : raw;
  for (const auto& f : caption_formats()) {
    if (opts.format != f.name) continue;
    CaptionSource out;
    ItemCollector items(out, opts);
    f.parse(text, name, opts, out, items);
    return out;
  }
  throw Error("unknown caption format '" + opts.format + "' (expected " + caption_format_names() + ")");
}

CaptionSource read_caption_source(const std::string& path, const SourceOptions& opts) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(path + ": captions file not found");
  return parse_caption_source(read_file(path), std::filesystem::path(path).filename().string(), opts);
}

}  // namespace clipcap
