// The videos a batch run captions: paths from the command line and/or a list file, then this
// process's shard of them.
//
//   clipcap::VideoListOptions o;  o.path_column = "video_path";  o.root = "videos/";
//   auto paths = clipcap::read_video_list("meta.csv", o);        // txt, csv or jsonl by extension
//   auto mine  = clipcap::take_shard(paths, clipcap::ShardSpec::parse("1/4"));   // common/shard_spec.h
//
// List formats (EasyAnimate-style metadata files work as they are):
//   .txt (any other extension)  one path per line; blank lines and lines starting with '#' skipped
//   .csv                        RFC 4180 with a header row; the path is in column `path_column`
//   .jsonl                      one JSON object per line; the path is the string at `path_column`
//   .json                       a JSON array of such objects (or of path strings)
// Relative paths are joined to `root` when it is given, else used as they are (relative to the
// current directory). Errors name the file, the line and the problem.
#pragma once

#include <string>
#include <vector>

#include "common/shard_spec.h"

namespace clipcap {

struct VideoListOptions {
  std::string path_column = "video_path";  // csv/jsonl/json: where the video path is
  std::string root;                        // prefix for relative paths ("" = none)
};

std::vector<std::string> read_video_list(const std::string& list_path, const VideoListOptions& opts);
// The same on text in memory; `name` (its extension picks the format) is used in errors.
std::vector<std::string> parse_video_list(const std::string& text, const std::string& name, const VideoListOptions& opts);

// Drops repeated paths, keeping the first of each.
std::vector<std::string> unique_paths(const std::vector<std::string>& paths);

}  // namespace clipcap
