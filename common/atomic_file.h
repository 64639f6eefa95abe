// Write-then-rename, so a crash, a full disk or Ctrl-C never leaves a half-written file under the
// final name.
//
//   clipcap::AtomicFile out("run/model.safetensors");
//   out.stream() << ...;            // or out.write(data, n)
//   out.commit();                   // flush + fsync + rename; throws clipcap::Error on failure
//
// A destructor without commit() removes the temporary file.
#pragma once

#include <fstream>
#include <string>

namespace clipcap {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ofstream& stream() { return out_; }
  void write(const void* data, size_t n);
  void commit();
  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return tmp_; }

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

// Whole-file helpers built on AtomicFile.
void write_file_atomic(const std::string& path, const std::string& contents);
std::string read_file(const std::string& path);

// The same for a directory written in full under another name (`staging`, e.g. DIR.tmp): moves it
// to `target`, an existing target first moved aside to target.old and removed after, so target is
// always either the old directory or the complete new one. Creates target's parent. Error names
// target and the reason.
void replace_directory(const std::string& staging, const std::string& target);
// After a crash between replace_directory's two renames, target is missing and target.old holds
// the previous complete directory: moves it back (returns true). A target.old left beside a
// complete target (a crash after both renames) is removed.
bool recover_replaced_directory(const std::string& target);

}  // namespace clipcap
