// SHA-256 (FIPS 180-4), for fingerprints that users can check with `sha256sum`.
//
//   std::string hex = clipcap::sha256_hex(clipcap::read_file("config.json"));   // 64 hex digits
//   clipcap::Sha256 h;  h.update(a);  h.update(b);  std::string hex2 = h.hex();  // streaming
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace clipcap {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(const std::string& s) { update(s.data(), s.size()); }
  std::string hex();  // finalises; call once

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(const std::string& bytes);

}  // namespace clipcap
