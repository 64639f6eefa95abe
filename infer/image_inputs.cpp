#include "infer/image_inputs.h"

#include <algorithm>
#include <filesystem>
#include <istream>
#include <set>

#include "common/error.h"

namespace fs = std::filesystem;

namespace clipcap {
namespace {

void add_path(const std::string& p, std::vector<std::string>& out) {
  std::error_code ec;
  if (!fs::is_directory(p, ec)) {
    out.push_back(p);
    return;
  }
  std::vector<std::string> found;
  fs::recursive_directory_iterator it(p, fs::directory_options::follow_directory_symlink, ec), end;
  if (ec) throw Error(p + ": cannot list the directory (" + ec.message() + ")");
  for (; it != end; it.increment(ec)) {
    if (ec) throw Error(p + ": cannot list the directory (" + ec.message() + ")");
    std::error_code fec;
    if (it->is_regular_file(fec) && has_image_extension(it->path().string())) found.push_back(it->path().string());
  }
  if (found.empty()) throw Error(p + ": no image files in this directory or below (.jpg, .png, .webp, .bmp, .tif, .pnm)");
  std::sort(found.begin(), found.end());
  out.insert(out.end(), found.begin(), found.end());
}

}  // namespace

bool has_image_extension(const std::string& path) {
  static const std::set<std::string> kExtensions = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif",
                                                    ".tiff", ".pnm", ".ppm", ".pgm", ".pbm"};
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return kExtensions.count(ext) > 0;
}

std::vector<std::string> expand_image_inputs(const std::vector<std::string>& args, std::istream& in) {
  std::vector<std::string> out;
  bool stdin_read = false;
  for (const auto& a : args) {
    if (a != "-") {
      add_path(a, out);
      continue;
    }
    if (stdin_read) continue;  // stdin can only be read once
    stdin_read = true;
    size_t from_stdin = 0;
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
      if (!line.empty()) add_path(line, out), ++from_stdin;
    }
    if (from_stdin == 0) throw Error("-: no image paths on standard input");
  }
  return out;
}

}  // namespace clipcap
