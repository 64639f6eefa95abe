// `clipcap-infer video`: which videos to caption (command line, --list, shard, resume) and what
// to tell the user about each; the captioning itself is VideoCaptioner's.
//
//   clipcap::VideoBatchOptions b;  b.list = "meta.jsonl";  b.results = "results.jsonl";
//   int code = clipcap::run_video_command(backend, video_opts, b, std::cout, std::cerr);
//
// Single mode (one video on the command line, no --list, no --results): the cues are printed on
// `out` as "[00:00:00.000 --> 00:00:02.000]  caption" (and "[video]  caption" with --video-caption);
// a bad video throws its clipcap::Error ("<path>: <problem>": exit 1).
// Batch mode (anything else): videos = command-line paths then the list's, repeats dropped, then
// this process's shard (--shard i/N, else RANK/WORLD_SIZE). With --results, videos that already
// have a line there are skipped and each finished video appends one (batch_results.h), so
// rerunning the command resumes. A bad video is reported on `err` (and in the results) and the
// batch goes on; `out` gets "<path>\t<video caption>" per video with --video-caption. A progress
// line (videos, frames/s, ETA) goes to `err`. Two videos that would write the same output files
// are refused before any work.
// Returns the exit code: 0 when every video of this run was captioned, 1 otherwise.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "infer/video_captioner.h"
#include "infer/video_list.h"

namespace clipcap {

struct VideoBatchOptions {
  std::vector<std::string> videos;  // from the command line
  std::string list;                 // --list FILE ("" = none)
  VideoListOptions list_options;    // --path-column, --video-root
  std::string results;              // --results FILE ("" = none)
  bool retry_errors = false;        // --retry-errors: videos whose result is an error run again
  std::optional<ShardSpec> shard;   // --shard; unset: RANK/WORLD_SIZE, else everything
};

int run_video_command(CaptionBackend& backend, const VideoCaptionOptions& opts, const VideoBatchOptions& batch,
                      std::ostream& out, std::ostream& err);

}  // namespace clipcap
