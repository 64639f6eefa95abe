#include "common/atomic_file.h"

#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
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

void replace_directory(const std::string& staging, const std::string& target) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string old = target + ".old";
  if (fs::exists(target, ec)) {
    fs::remove_all(old, ec);
    fs::rename(target, old, ec);
    if (ec) throw Error(target + ": cannot move the previous directory aside (" + ec.message() + ")");
  } else if (const fs::path parent = fs::path(target).parent_path(); !parent.empty()) {
    fs::create_directories(parent, ec);
  }
  fs::rename(staging, target, ec);
  if (ec) throw Error(target + ": cannot move " + staging + " into place (" + ec.message() + ")");
  fs::remove_all(old, ec);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace clipcap
