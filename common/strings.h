// Small text helpers every layer uses for messages.
//
//   clipcap::first_line("bad\nbacktrace...")      // "bad": libtorch and std messages can span lines
//   clipcap::plural(3, "image")                   // "3 images"
//   clipcap::format_number(0.12345, "%.3f")       // "0.123"; "-" for NaN / infinity
#pragma once

#include <cstdint>
#include <string>

namespace clipcap {

std::string first_line(const std::string& s);
std::string plural(int64_t n, const std::string& what);
std::string format_number(double x, const char* printf_spec);

}  // namespace clipcap
