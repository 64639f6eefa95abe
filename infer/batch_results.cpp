#include "infer/batch_results.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"

namespace fs = std::filesystem;

namespace clipcap {

BatchResults::BatchResults(std::string path, bool retry_errors) : path_(std::move(path)) {
  std::error_code ec;
  if (fs::exists(path_, ec)) {
    if (fs::is_directory(path_, ec)) throw Error(path_ + ": is a directory, not a results file");
    const std::string text = read_file(path_);
    const size_t complete = text.empty() || text.back() == '\n' ? text.size() : text.rfind('\n') + 1;  // npos + 1 == 0
    size_t line_start = 0;
    int line_no = 0;
    while (line_start < complete) {
      const size_t nl = text.find('\n', line_start);
      const std::string line = text.substr(line_start, nl - line_start);
      ++line_no;
      line_start = nl + 1;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!j.is_object() || !j.contains("path") || !j["path"].is_string())
        throw Error(path_ + ":" + std::to_string(line_no) + ": not a results line (a JSON object with \"path\")");
      const std::string video = j["path"].get<std::string>();
      const bool transient = j.value("transient", false) == true;  // the endpoint failed, not the video
      if (!j.contains("error") || (!retry_errors && !transient))
        done_.insert(video);
      else
        done_.erase(video);
    }
    if (complete < text.size()) {
      torn_bytes_ = static_cast<int64_t>(text.size() - complete);
      fs::resize_file(path_, complete, ec);
      if (ec) throw Error(path_ + ": cannot cut off the torn last line (" + ec.message() + ")");
    }
  } else {
    const fs::path parent = fs::path(path_).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(path_ + ": cannot open for appending (" + std::strerror(errno) + ")");
  if (const char* n = std::getenv("CLIPCAP_TEST_ABORT_AFTER_VIDEOS"); n && *n) abort_after_ = std::atoll(n);
}

BatchResults::~BatchResults() {
  if (fd_ >= 0) ::close(fd_);
}

void BatchResults::append(const nlohmann::json& line) {
  const std::string text = line.dump() + "\n";  // dump() escapes newlines: one physical line
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd_, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(path_ + ": cannot append a result (" + std::strerror(errno) + ")");
    written += static_cast<size_t>(n);
  }
  ::fdatasync(fd_);
  if (line.contains("path") && line["path"].is_string() && !line.contains("error"))
    done_.insert(line["path"].get<std::string>());
  if (abort_after_ >= 0 && ++appended_ >= abort_after_) ::_exit(86);
}

}  // namespace clipcap
