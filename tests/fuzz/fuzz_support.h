// What the libFuzzer targets share (tests/fuzz/fuzz_*.cpp): the input as a file, for the readers
// that take paths, and the rule for what counts as a finding.
//
// The rule: a reader given any bytes either returns or throws clipcap::Error (the one-line message
// the executables print). A crash, a sanitizer report, a hang, or any other exception escaping
// (nlohmann's, libtorch's, std::out_of_range: an error in a library's words) is a finding: it
// leaves LLVMFuzzerTestOneInput, std::terminate prints it and libFuzzer saves the input.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/error.h"

namespace clipcap::fuzz {

// An in-memory file (memfd) rewritten for each input; path() opens it like any file.
class MemFile {
 public:
  explicit MemFile(const char* name) : fd_(::memfd_create(name, 0)) {
    if (fd_ < 0) std::abort();
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  const std::string& set(const uint8_t* data, size_t size) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

// Runs f; clipcap::Error is the expected way to refuse an input.
template <class F>
void refused_or_ok(F&& f) {
  try {
    f();
  } catch (const clipcap::Error&) {
  }
}

// A source directory file the target reads once (tokenizer vocabularies): CLIPCAP_SOURCE_DIR is
// set by tests/fuzz/CMakeLists.txt.
inline std::string source_file(const std::string& relative) { return std::string(CLIPCAP_SOURCE_DIR) + "/" + relative; }

}  // namespace clipcap::fuzz
