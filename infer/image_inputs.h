// The images `clipcap-infer image` was asked for, expanded into a list of files.
//
//   auto files = clipcap::expand_image_inputs({"photos/", "cat.jpg", "-"}, std::cin);
//
// A file is taken as given (even when it does not exist or has another extension: reading it
// reports the problem); a directory contributes every file under it, recursively, whose extension
// is an image one (jpg jpeg png bmp webp tif tiff pnm ppm pgm pbm, any case), sorted by path; "-"
// reads one path per line from `in` (blank lines skipped), each expanded the same way. A directory
// that cannot be listed throws clipcap::Error naming it.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace clipcap {

bool has_image_extension(const std::string& path);
std::vector<std::string> expand_image_inputs(const std::vector<std::string>& args, std::istream& in);

}  // namespace clipcap
