#include "common/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "common/strings.h"

namespace clipcap {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<int64_t>(std::llround(seconds));
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>((s % 3600) / 60));
  return buf;
}

Progress::Progress(std::string label, int64_t total, ProgressOptions opts)
    : label_(std::move(label)), total_(total), opts_(std::move(opts)) {
  if (!opts_.out) opts_.out = &std::cerr;
  tty_ = opts_.tty >= 0 ? opts_.tty == 1 : ::isatty(STDERR_FILENO) == 1;
  start_ = last_print_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

void Progress::skip(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  skipped_ += n;
}

void Progress::advance(int64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ += n;
  maybe_print(false);
}

void Progress::set_note(std::string note) {
  std::lock_guard<std::mutex> lock(mu_);
  note_ = std::move(note);
}

void Progress::print_line(const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  if (tty_) {
    *opts_.out << "\r" << line << "\033[K\n" << line_locked() << "\033[K" << std::flush;
    last_print_ = std::chrono::steady_clock::now();
  } else {
    *opts_.out << line << "\n" << std::flush;
  }
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  maybe_print(true);
  if (tty_) *opts_.out << "\n";
  opts_.out->flush();
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::rate() const {
  double t = elapsed_seconds();
  return t > 0 && done_ > 0 ? done_ / t : 0.0;
}

std::string Progress::line() const {
  std::lock_guard<std::mutex> lock(mu_);
  return line_locked();
}

std::string Progress::line_locked() const {
  std::ostringstream s;
  const int64_t done = done_ + skipped_;
  s << label_ << " " << done << "/" << total_ << " " << opts_.unit;
  const double r = rate();
  s << " | " << format_number(r, "%.1f") << " " << opts_.unit << "/s";
  s << " | eta " << (r > 0 ? format_duration((total_ - done) / r) : std::string("?"));
  if (!note_.empty()) s << " | " << note_;
  return s.str();
}

void Progress::maybe_print(bool force) {
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_print_).count();
  if (!force && since < (tty_ ? 0.1 : opts_.log_every_seconds)) return;
  last_print_ = now;
  if (tty_)
    *opts_.out << "\r" << line_locked() << "\033[K" << std::flush;
  else
    *opts_.out << line_locked() << "\n" << std::flush;
}

}  // namespace clipcap
