#include "infer/video_batch.h"

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>

#include "common/error.h"
#include "common/progress.h"
#include "infer/batch_results.h"

namespace clipcap {
namespace {

void print_cues(const VideoResult& r, std::ostream& out) {
  for (const Cue& c : r.cues)
    out << "[" << format_timestamp(c.start_s, '.') << " --> " << format_timestamp(c.end_s, '.') << "]  "
        << one_line(c.text) << "\n";
  if (!r.video_caption.empty()) out << "[video]  " << one_line(r.video_caption) << "\n";
  out.flush();
}

// Two different videos with the same file name going to the same directory would overwrite each
// other's subtitles: refuse before doing any work.
void check_distinct_outputs(const std::vector<std::string>& paths, const std::string& out_dir) {
  std::map<std::string, std::string> seen;
  for (const auto& p : paths) {
    auto [it, fresh] = seen.emplace(output_stem(p, out_dir), p);
    if (!fresh)
      throw Error(p + ": would write the same files as " + it->second + " (" + it->first +
                  "_caption.*); caption them in separate runs or with different --out-dir");
  }
}

}  // namespace

int run_video_command(CaptionBackend& backend, const VideoCaptionOptions& opts, const VideoBatchOptions& batch,
                      std::ostream& out, std::ostream& err) {
  const bool single = batch.videos.size() == 1 && batch.list.empty() && batch.results.empty();
  VideoCaptioner video_captioner(backend, opts);
  if (single) {
    VideoResult r = video_captioner.caption(batch.videos[0]);
    if (!r.ok) throw Error(r.error);
    print_cues(r, out);
    return 0;
  }

  std::vector<std::string> all = batch.videos;
  if (!batch.list.empty()) {
    auto listed = read_video_list(batch.list, batch.list_options);
    all.insert(all.end(), listed.begin(), listed.end());
  }
  if (all.empty())
    throw Error(batch.list.empty() ? "no videos: give video files or --list FILE"
                                   : batch.list + ": the list names no videos");
  const ShardSpec shard = batch.shard ? *batch.shard : ShardSpec::from_env();
  std::vector<std::string> mine = take_shard(unique_paths(all), shard);

  std::unique_ptr<BatchResults> results;
  if (!batch.results.empty()) {
    results = std::make_unique<BatchResults>(batch.results, batch.retry_errors);
    if (results->torn_bytes_dropped() > 0)
      err << "clipcap-infer: " << batch.results << ": dropped a torn last line (" << results->torn_bytes_dropped()
          << " bytes) left by an interrupted run\n";
  }
  std::vector<std::string> todo;
  for (const auto& p : mine)
    if (!results || !results->has(p)) todo.push_back(p);
  check_distinct_outputs(todo, opts.out_dir);

  ProgressOptions popts;
  popts.unit = "videos";
  Progress progress("video", static_cast<int64_t>(mine.size()), popts);
  progress.skip(static_cast<int64_t>(mine.size() - todo.size()));
  int64_t failed = 0;
  video_captioner.caption_all(
      todo,
      [&](const VideoResult& r) {
        if (results) results->append(r.to_json());
        if (!r.ok) {
          ++failed;
          err << "clipcap-infer: error: " << r.error << "\n";
        } else if (opts.video_caption) {
          out << r.path << "\t" << one_line(r.video_caption) << "\n";
          out.flush();
        }
      },
      &progress);
  progress.finish();
  if (failed > 0)
    err << "clipcap-infer: " << failed << " of " << todo.size() << " videos failed"
        << (results ? " (recorded in " + batch.results + ")" : std::string()) << "\n";
  return failed > 0 ? 1 : 0;
}

}  // namespace clipcap
