// RFC 4648 base64 (standard alphabet, '=' padding), for data: URLs.
//
//   std::optional<std::vector<uint8_t>> bytes = clipcap::base64_decode(text);   // nullopt: not base64
//   std::string text = clipcap::base64_encode(bytes);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clipcap {

// Whitespace is skipped; anything else outside the alphabet, or a length that is not a whole
// number of 4-character groups, gives nullopt.
std::optional<std::vector<uint8_t>> base64_decode(std::string_view text);
std::string base64_encode(const std::vector<uint8_t>& bytes);
std::string base64_encode(std::string_view bytes);  // bytes held in a string (encode_jpeg's)

}  // namespace clipcap
