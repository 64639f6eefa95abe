#include "model/weights/zip_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace clipcap {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndOfCentralDirSig = 0x06054b50;
constexpr uint32_t kZip64EndOfCentralDirSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint64_t kEndOfCentralDirSize = 22;
constexpr uint64_t kMaxCommentSize = 0xFFFF;

uint16_t le16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t le32(const unsigned char* p) { return le16(p) | (static_cast<uint32_t>(le16(p + 2)) << 16); }
uint64_t le64(const unsigned char* p) { return le32(p) | (static_cast<uint64_t>(le32(p + 4)) << 32); }

}  // namespace

ZipArchive::ZipArchive(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(path_ + ": cannot open (" + std::strerror(errno) + ")");
  try {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw Error(path_ + ": cannot stat (" + std::strerror(errno) + ")");
    if (S_ISDIR(st.st_mode)) throw Error(path_ + ": is a directory, not a torch checkpoint");
    file_size_ = static_cast<uint64_t>(st.st_size);
    const std::string not_zip = path_ + ": not a zip archive (no end-of-central-directory record; truncated file?)";
    if (file_size_ < kEndOfCentralDirSize) throw Error(not_zip);

    // The end record sits in the last 22 bytes plus an optional comment of up to 64 KiB.
    const uint64_t tail_size = std::min(file_size_, kEndOfCentralDirSize + kMaxCommentSize);
    std::vector<unsigned char> tail(tail_size);
    pread_exact(tail.data(), tail_size, file_size_ - tail_size);
    int64_t eocd = -1;
    for (int64_t i = static_cast<int64_t>(tail_size - kEndOfCentralDirSize); i >= 0; --i) {
      if (le32(&tail[i]) == kEndOfCentralDirSig &&
          i + kEndOfCentralDirSize + le16(&tail[i + 20]) == tail_size) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw Error(not_zip);
    const unsigned char* e = &tail[eocd];
    const uint64_t eocd_offset = file_size_ - tail_size + eocd;
    uint64_t disk = le16(e + 4), cd_disk = le16(e + 6);
    uint64_t count = le16(e + 10), cd_size = le32(e + 12), cd_offset = le32(e + 16);

    if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
      // ZIP64: a locator right before the end record points at the 64-bit end record.
      if (eocd_offset < 20) throw Error(path_ + ": corrupt zip archive (ZIP64 locator missing)");
      unsigned char loc[20];
      pread_exact(loc, 20, eocd_offset - 20);
      if (le32(loc) != kZip64LocatorSig) throw Error(path_ + ": corrupt zip archive (ZIP64 locator missing)");
      const uint64_t rec_offset = le64(loc + 8);
      unsigned char rec[56];
      if (rec_offset > file_size_ || file_size_ - rec_offset < 56)
        throw Error(path_ + ": corrupt zip archive (ZIP64 end record outside the file; truncated file?)");
      pread_exact(rec, 56, rec_offset);
      if (le32(rec) != kZip64EndOfCentralDirSig) throw Error(path_ + ": corrupt zip archive (bad ZIP64 end record)");
      disk = le32(rec + 16);
      cd_disk = le32(rec + 20);
      count = le64(rec + 32);
      cd_size = le64(rec + 40);
      cd_offset = le64(rec + 48);
    }
    if (disk != 0 || cd_disk != 0) throw Error(path_ + ": multi-disk zip archives are not supported");
    if (cd_offset > file_size_ || cd_size > file_size_ - cd_offset)
      throw Error(path_ + ": corrupt zip archive (central directory outside the file; truncated file?)");
    if (count > cd_size / 46) throw Error(path_ + ": corrupt zip archive (central directory too small)");

    std::vector<unsigned char> cd(cd_size);
    pread_exact(cd.data(), cd_size, cd_offset);
    uint64_t pos = 0;
    entries_.reserve(count);
    for (uint64_t i = 0; i < count; ++i) {
      if (cd_size - pos < 46 || le32(&cd[pos]) != kCentralHeaderSig)
        throw Error(path_ + ": corrupt zip archive (bad central directory entry " + std::to_string(i) + ")");
      const unsigned char* h = &cd[pos];
      Entry entry;
      entry.flags = le16(h + 8);
      entry.method = le16(h + 10);
      entry.compressed_size = le32(h + 20);
      entry.size = le32(h + 24);
      const uint64_t name_len = le16(h + 28), extra_len = le16(h + 30), comment_len = le16(h + 32);
      const uint64_t start_disk = le16(h + 34);
      entry.local_header_offset = le32(h + 42);
      if (cd_size - pos - 46 < name_len + extra_len + comment_len)
        throw Error(path_ + ": corrupt zip archive (central directory entry " + std::to_string(i) + " overruns)");
      entry.name.assign(reinterpret_cast<const char*>(h + 46), name_len);
      // ZIP64 extra field: 64-bit values for exactly those fields saturated at 0xFFFFFFFF, in order.
      const unsigned char* x = h + 46 + name_len;
      const unsigned char* x_end = x + extra_len;
      while (x_end - x >= 4) {
        const uint16_t id = le16(x), len = le16(x + 2);
        const unsigned char* v = x + 4;
        if (x_end - v < len) break;
        if (id == 0x0001) {
          const unsigned char* v_end = v + len;
          auto take = [&](uint64_t& field) {
            if (field != 0xFFFFFFFF) return;
            if (v_end - v < 8) throw Error(path_ + ": corrupt zip archive (short ZIP64 field for '" + entry.name + "')");
            field = le64(v);
            v += 8;
          };
          take(entry.size);
          take(entry.compressed_size);
          take(entry.local_header_offset);
        }
        x += 4 + len;
      }
      if (start_disk != 0 && start_disk != 0xFFFF)
        throw Error(path_ + ": multi-disk zip archives are not supported");
      pos += 46 + name_len + extra_len + comment_len;
      entries_.push_back(std::move(entry));
    }
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

ZipArchive::~ZipArchive() {
  if (fd_ >= 0) ::close(fd_);
}

const ZipArchive::Entry* ZipArchive::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

uint64_t ZipArchive::data_offset(const Entry& e) const {
  const std::string where = path_ + ": entry '" + e.name + "'";
  if (e.flags & 1) throw Error(where + " is encrypted");
  if (e.method != 0)
    throw Error(where + " is compressed (method " + std::to_string(e.method) +
                "); torch.save archives store entries uncompressed (re-save the checkpoint with torch.save)");
  if (e.compressed_size != e.size) throw Error(where + ": stored entry has compressed size != size (corrupt archive)");
  // The local header repeats the name but may carry a different extra field (torch pads data to
  // 64-byte alignment there), so its own lengths decide where the data starts.
  unsigned char h[30];
  if (e.local_header_offset > file_size_ || file_size_ - e.local_header_offset < 30)
    throw Error(where + ": local header is outside the file (truncated file?)");
  pread_exact(h, 30, e.local_header_offset);
  if (le32(h) != kLocalHeaderSig) throw Error(where + ": bad local header (corrupt archive)");
  const uint64_t start = e.local_header_offset + 30 + le16(h + 26) + le16(h + 28);
  if (start > file_size_ || e.size > file_size_ - start)
    throw Error(where + ": data runs past the end of the file (truncated file?)");
  return start;
}

std::string ZipArchive::read(const Entry& e) const {
  (void)data_offset(e);  // checks that the entry lies in the file before its size is allocated
  std::string out(e.size, '\0');
  read(e, 0, out.data(), e.size);
  return out;
}

void ZipArchive::read(const Entry& e, uint64_t offset, void* buffer, uint64_t n) const {
  const uint64_t start = data_offset(e);
  if (offset > e.size || n > e.size - offset)
    throw Error(path_ + ": entry '" + e.name + "': read of " + std::to_string(n) + " bytes at " +
                std::to_string(offset) + " is past its end (" + std::to_string(e.size) + " bytes)");
  pread_exact(buffer, n, start + offset);
}

void ZipArchive::pread_exact(void* buffer, uint64_t n, uint64_t offset) const {
  auto* p = static_cast<char*>(buffer);
  while (n > 0) {
    ssize_t got = ::pread(fd_, p, std::min<uint64_t>(n, 1u << 30), static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw Error(path_ + ": read failed (" + std::strerror(errno) + ")");
    }
    if (got == 0) throw Error(path_ + ": file is truncated");
    p += got;
    n -= static_cast<uint64_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

}  // namespace clipcap
