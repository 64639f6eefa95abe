// A progress line for long jobs: items done, rate, ETA. On a terminal (isatty(stderr)) one line
// redrawn in place at most 10 times a second; otherwise (logs, CI, nohup) a plain line every
// `log_every_seconds`, so log files stay short and greppable.
//
//   clipcap::ProgressOptions opts;  opts.unit = "img";
//   clipcap::Progress progress("embed", total_images, opts);
//   progress.skip(already_done);      // resumed work: counted in "done", not in the rate
//   progress.advance(batch_size);     // thread-safe
//   progress.finish();                // final line, always printed
//
// Line: "embed 1200/30000 img | 412.3 img/s | eta 1m10s" (eta "?" until the rate is known).
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <mutex>
#include <string>

namespace clipcap {

struct ProgressOptions {
  std::string unit = "items";       // shown after the counts and in the rate
  double log_every_seconds = 10.0;  // non-terminal output: one line per this many seconds
  std::ostream* out = nullptr;      // nullptr: std::cerr
  int tty = -1;                     // -1: isatty(stderr) decides; 0/1 force (tests)
};

class Progress {
 public:
  Progress(std::string label, int64_t total, ProgressOptions opts = {});
  ~Progress();

  void skip(int64_t n);     // items already done before this run (resume)
  void advance(int64_t n);  // items done now
  void finish();            // prints the final line once (also called by the destructor)
  void set_note(std::string note);  // shown at the end of the line, e.g. "loss 2.314"
  // A log line of its own (e.g. a training step's): on a terminal printed above the progress line,
  // which is redrawn under it.
  void print_line(const std::string& line);

  std::string line() const;  // the current line, without decoration
  double rate() const;       // items per second done in this run (0 until something is done)
  double elapsed_seconds() const;

 private:
  void maybe_print(bool force);
  std::string line_locked() const;

  std::string label_, note_;
  int64_t total_, done_ = 0, skipped_ = 0;
  ProgressOptions opts_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_print_;
  mutable std::mutex mu_;
};

// "45s", "3m05s", "2h07m".
std::string format_duration(double seconds);

}  // namespace clipcap
