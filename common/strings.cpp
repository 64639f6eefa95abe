#include "common/strings.h"

#include <cmath>
#include <cstdio>

namespace clipcap {

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string plural(int64_t n, const std::string& what) { return std::to_string(n) + " " + what + (n == 1 ? "" : "s"); }

std::string format_number(double x, const char* printf_spec) {
  if (!std::isfinite(x)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, printf_spec, x);
  return buf;
}

}  // namespace clipcap
