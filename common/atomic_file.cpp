#include "common/atomic_file.h"

#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "common/error.h"

namespace clipcap {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp." + std::to_string(::getpid());
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  if (!out_) throw Error(path_ + ": cannot create file (" + std::strerror(errno) + ")");
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    out_.close();
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t n) {
  out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  if (!out_) throw Error(path_ + ": write failed (disk full?)");
}

void AtomicFile::commit() {
  out_.flush();
  if (!out_) throw Error(path_ + ": write failed (disk full?)");
  out_.close();
  // fsync before rename: otherwise a power cut can leave the new name pointing at an empty file.
  int fd = ::open(tmp_.c_str(), O_RDONLY);
  if (fd >= 0) {
    int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) throw Error(path_ + ": fsync failed (" + std::strerror(errno) + ")");
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    throw Error(path_ + ": cannot rename temporary file into place (" + std::strerror(errno) + ")");
  committed_ = true;
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  AtomicFile f(path);
  f.write(contents.data(), contents.size());
  f.commit();
}

namespace {

// Test hook: CLIPCAP_TEST_KILL_REPLACE=STAGE:N:NAME makes the process exit at once (_exit(86), no
// clean-up, as kill -9) at STAGE (before, between or after the two renames) of the N-th
// replace_directory() whose target's file name is NAME: every state a crash can leave, on purpose.
void kill_point(const std::string& stage, const std::string& target) {
  static const char* spec = std::getenv("CLIPCAP_TEST_KILL_REPLACE");
  if (!spec || !*spec) return;
  static int seen = 0;
  const std::string s = spec;
  const size_t a = s.find(':'), b = s.find(':', a + 1);
  if (a == std::string::npos || b == std::string::npos) return;
  if (std::filesystem::path(target).filename().string() != s.substr(b + 1)) return;
  if (stage == "before") ++seen;  // one count per replace
  if (s.substr(0, a) == stage && seen == std::atoi(s.substr(a + 1, b - a - 1).c_str())) ::_exit(86);
}

}  // namespace

void replace_directory(const std::string& staging, const std::string& target) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string old = target + ".old";
  kill_point("before", target);
  if (fs::exists(target, ec)) {
    fs::remove_all(old, ec);
    fs::rename(target, old, ec);
    if (ec) throw Error(target + ": cannot move the previous directory aside (" + ec.message() + ")");
  } else if (const fs::path parent = fs::path(target).parent_path(); !parent.empty()) {
    fs::create_directories(parent, ec);
  }
  kill_point("between", target);
  fs::rename(staging, target, ec);
  if (ec) throw Error(target + ": cannot move " + staging + " into place (" + ec.message() + ")");
  kill_point("after", target);
  fs::remove_all(old, ec);
}

bool recover_replaced_directory(const std::string& target) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string old = target + ".old";
  if (fs::exists(target, ec)) {  // both renames happened: the old one is only left to delete
    fs::remove_all(old, ec);
    return false;
  }
  if (!fs::is_directory(old, ec)) return false;
  fs::rename(old, target, ec);
  if (ec) throw Error(target + ": cannot move " + old + " back (" + ec.message() + ")");
  return true;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace clipcap
