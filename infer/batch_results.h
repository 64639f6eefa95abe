// The results file of a batch run: one JSON line per video, appended as each finishes, so a
// killed run can be resumed by running the same command again.
//
//   clipcap::BatchResults results("out/results.jsonl");   // reads what an earlier run wrote
//   if (results.has(path)) skip;                           // done (or failed) before
//   results.append(video_result.to_json());                // one write(2) per line, then fdatasync
//
// A last line without its newline (the process was killed mid-write) is cut off when the file is
// opened; any other line that is not a JSON object with a "path" is an error naming the line.
// A video counts as done when it has a line; with retry_errors only lines without "error" count,
// so failed videos are tried again (their new line is appended; the last line of a path wins).
// Lines marked "transient": true (a remote endpoint gave up, not the video) are always tried again.
// Test hook: CLIPCAP_TEST_ABORT_AFTER_VIDEOS=N makes the process exit at once (_exit(86), no
// clean-up) after appending its N-th line, to test resuming after a kill.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <set>
#include <string>

namespace clipcap {

class BatchResults {
 public:
  explicit BatchResults(std::string path, bool retry_errors = false);
  ~BatchResults();
  BatchResults(const BatchResults&) = delete;
  BatchResults& operator=(const BatchResults&) = delete;

  bool has(const std::string& video_path) const { return done_.count(video_path) > 0; }
  size_t done_count() const { return done_.size(); }
  int64_t torn_bytes_dropped() const { return torn_bytes_; }  // from a killed earlier run
  void append(const nlohmann::json& line);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::set<std::string> done_;
  int64_t torn_bytes_ = 0;
  int64_t appended_ = 0, abort_after_ = -1;
};

}  // namespace clipcap
