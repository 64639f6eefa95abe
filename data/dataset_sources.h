// Caption sources: the input formats clipcap-data reads, each turned into one list of images with
// their captions (and the split, when the source carries one), plus every row it had to reject.
//
//   clipcap::SourceOptions opts;  opts.format = "flickr";
//   clipcap::CaptionSource src = clipcap::read_caption_source("results.csv", opts);
//   for (auto& item : src.items) ...   // item.image (relative to --images), item.captions, item.split
//   for (auto& p : src.problems) ...   // p.row ("results.csv:19"), p.reason
//
// Formats:
//   flickr    Kaggle Flickr30k results.csv: "image_name| comment_number| comment". Upstream's one
//             known bad row ("2199200615.jpg| 4   A dog runs ...", no second '|') is recovered as
//             number + whitespace + caption; rows that cannot be recovered become problems. Any
//             number of rows per image. Only the leading whitespace of a caption is dropped: case
//             and Flickr's tokenisation (" .") are kept.
//   karpathy  dataset_flickr30k.json / dataset_coco.json: images[] {filepath?, filename, split,
//             sentences[] {raw}}. split train|restval -> train, val, test.
//   coco      captions_*.json: images[] {id, file_name}, annotations[] {image_id, caption}.
//   jsonl     one object per line; image/caption (and optional split) keys set by the options.
//   csv       RFC 4180 with a header row; same column options, separator configurable.
// Images keep the order of their first appearance; captions keep file order. Captions of the
// non-flickr formats are trimmed at both ends (COCO's have stray spaces and newlines).
#pragma once

#include <string>
#include <vector>

namespace clipcap {

struct SourceOptions {
  std::string format = "flickr";         // flickr | karpathy | coco | jsonl | csv
  std::string image_column = "image";    // jsonl/csv: key of the image path
  std::string caption_column = "caption";// jsonl/csv: key of the caption
  std::string split_column;              // jsonl/csv: key of the split ("" = none)
  char csv_separator = ',';              // csv only
  bool lowercase = false;                // lower-case captions (ASCII letters)
};

struct SourceItem {
  std::string image;                  // as written in the source: relative to the images root
  std::vector<std::string> captions;  // at least one
  std::string split;                  // "train" | "val" | "test" | "" (not given: decided later)
};

struct SourceProblem {
  std::string row;     // "<file>:<line>" or "<file>: images[3]"
  std::string reason;  // what was wrong
};

struct CaptionSource {
  std::vector<SourceItem> items;
  std::vector<SourceProblem> problems;   // rows lost: reported in errors.jsonl
  std::vector<SourceProblem> recovered;  // malformed rows whose caption was still recovered
  int64_t caption_count() const;
};

// Reads and parses `path`; a missing/unreadable file or invalid JSON document throws
// clipcap::Error; bad rows go to problems, named by the file's base name and line.
CaptionSource read_caption_source(const std::string& path, const SourceOptions& opts);

// The same, on text already in memory (tests, stdin).
CaptionSource parse_caption_source(const std::string& text, const std::string& name, const SourceOptions& opts);

// "flickr | karpathy | coco | jsonl | csv": every format, in the order of the table in the .cpp
// (a new format is a parse function there and one row of that table).
std::string caption_format_names();

// "train" | "val" | "test" for the split names the formats use (restval -> train), else "".
std::string normalise_split(const std::string& name);

}  // namespace clipcap
