// Path helpers for names shown to users and written into reports.
//
//   clipcap::base_name("runs/small/best/")   // "best" (trailing slashes and "." resolved)
//   clipcap::without_trailing_slashes("data/ds//")   // "data/ds"
#pragma once

#include <string>

namespace clipcap {

std::string base_name(const std::string& dir);
std::string without_trailing_slashes(std::string path);

}  // namespace clipcap
