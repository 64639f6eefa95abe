// The videos a batch run captions: paths from the command line and/or a list file, then this
// process's shard of them.
//
//   clipcap::VideoListOptions o;  o.path_column = "video_path";  o.root = "videos/";
//   auto paths = clipcap::read_video_list("meta.csv", o);        // txt, csv or jsonl by extension
//   auto shard = clipcap::ShardSpec::parse("1/4");                 // or ShardSpec::from_env()
//   auto mine  = clipcap::take_shard(paths, shard);                // items 1, 5, 9, ...
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

struct ShardSpec {
  int index = 0, count = 1;  // this process takes items index, index + count, index + 2 * count, ...
  static ShardSpec parse(const std::string& spec);  // "i/N" with 0 <= i < N; Error otherwise
  // RANK / WORLD_SIZE from the environment (torchrun, EasyAnimate); {0, 1} when not set.
  static ShardSpec from_env();
};
std::vector<std::string> take_shard(const std::vector<std::string>& items, const ShardSpec& shard);

}  // namespace clipcap
