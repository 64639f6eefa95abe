// Read-only access to the uncompressed (STORED) entries of a zip archive, as torch.save writes them.
//
//   clipcap::ZipArchive zip("pytorch_model.bin");        // reads the central directory only
//   const auto* e = zip.find("pytorch_model/data.pkl");
//   std::string pickle = zip.read(*e);                   // a small entry, whole
//   zip.read(*other, 0, buffer, other->size);             // a tensor, straight into its buffer
//
// Entries are read with pread on demand, so a 1.5 GB checkpoint is never held in memory. ZIP64
// archives (> 4 GiB, or > 65535 entries) are supported; compressed or encrypted entries and
// multi-disk archives are rejected with clipcap::Error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace clipcap {

class ZipArchive {
 public:
  struct Entry {
    std::string name;
    uint64_t size = 0;                 // uncompressed bytes
    uint64_t compressed_size = 0;
    uint64_t local_header_offset = 0;  // where its local file header starts
    uint16_t method = 0;               // 0 = stored
    uint16_t flags = 0;
  };

  explicit ZipArchive(std::string path);
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<Entry>& entries() const { return entries_; }  // central directory order
  const Entry* find(const std::string& name) const;                // nullptr if absent

  std::string read(const Entry& e) const;
  // Bytes [offset, offset + n) of the entry's data.
  void read(const Entry& e, uint64_t offset, void* buffer, uint64_t n) const;

 private:
  uint64_t data_offset(const Entry& e) const;
  void pread_exact(void* buffer, uint64_t n, uint64_t offset) const;

  std::string path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::vector<Entry> entries_;
};

}  // namespace clipcap
