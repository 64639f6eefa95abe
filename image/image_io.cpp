#include "image/image_io.h"

#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "common/atomic_file.h"
#include "common/error.h"

namespace clipcap {

namespace {

// What the container headers say, read before any pixel is decoded.
struct HeaderInfo {
  int64_t width = -1, height = -1;  // -1: unknown (format we do not parse)
  bool png_gray16 = false;          // 16-bit grayscale PNG: PIL reads it as mode "I" (see below)
};

uint32_t be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }
uint16_t be16(const uint8_t* p) { return uint16_t((p[0] << 8) | p[1]); }
uint32_t le32(const uint8_t* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24); }
uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }

bool starts_with(const std::vector<uint8_t>& b, const char* magic, size_t n, size_t at = 0) {
  return b.size() >= at + n && std::memcmp(b.data() + at, magic, n) == 0;
}

// Formats read besides PNG, JPEG, BMP and WebP (checked above), by their signatures. Anything else
// never reaches cv::imdecode: Debian's OpenCV falls back on GDAL and GDCM, which parse hundreds of
// formats, print to stderr and, for a damaged DICOM file, abort the process (an assert in GDCM,
// found by tests/fuzz/fuzz_image_decode).
constexpr const char* kFormats = "PNG, JPEG, BMP, WebP, TIFF, PNM, JPEG 2000, Sun raster or Radiance HDR";

bool other_decodable_format(const std::vector<uint8_t>& b) {
  // OpenCV picks a decoder by signatures of its own, in its own order: GDCM claims any file with
  // "DICM" at byte 128 and GDAL one with "DTED" at byte 140 before the JPEG 2000 or TIFF decoder
  // would (found by the fuzzer too, after the list above).
  if (starts_with(b, "DICM", 4, 128) || starts_with(b, "DTED", 4, 140)) return false;
  if (starts_with(b, "II*\0", 4) || starts_with(b, "MM\0*", 4)) return true;            // TIFF
  if (b.size() >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7' && std::isspace(b[2])) return true;  // PNM, PAM
  if (starts_with(b, "\0\0\0\x0cjP  \r\n\x87\n", 12) || starts_with(b, "\xff\x4f\xff\x51", 4)) return true;  // JPEG 2000
  if (starts_with(b, "\x59\xa6\x6a\x95", 4)) return true;                              // Sun raster
  return starts_with(b, "#?RADIANCE", 10) || starts_with(b, "#?RGBE", 6);                 // Radiance HDR
}

// CRC-32 of PNG chunks (ISO 3309, the polynomial zlib uses), table-driven.
uint32_t png_crc(const uint8_t* p, size_t n) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

std::string chunk_name(const uint8_t* type) {
  std::string s;
  for (int i = 0; i < 4; ++i) s += std::isalpha(type[i]) ? static_cast<char>(type[i]) : '?';
  return s;
}

// PNG: signature, then chunks (length, type, data, crc) up to IEND. A file cut short ends before
// IEND; libpng would otherwise hand OpenCV a partly filled image. Every chunk's CRC is checked
// here (PIL refuses a mismatch too): a damaged chunk is then this message, not libpng's own
// "libpng error:" line on stderr before it.
HeaderInfo check_png(const std::vector<uint8_t>& b, const std::string& name) {
  HeaderInfo info;
  size_t pos = 8;
  bool first = true;
  while (true) {
    if (pos + 8 > b.size()) throw Error(name + ": truncated PNG (file ends before the IEND chunk)");
    uint32_t len = be32(&b[pos]);
    const uint8_t* type = &b[pos + 4];
    if (len > 0x7fffffffu) throw Error(name + ": corrupt PNG (chunk length " + std::to_string(len) + ")");
    if (first) {
      if (std::memcmp(type, "IHDR", 4) != 0 || len < 13 || pos + 8 + 13 > b.size())
        throw Error(name + ": corrupt PNG (first chunk is not a valid IHDR)");
      const uint8_t* h = &b[pos + 8];
      info.width = be32(h);
      info.height = be32(h + 4);
      info.png_gray16 = h[8] == 16 && h[9] == 0;  // bit depth 16, colour type 0 (gray)
      first = false;
    }
    if (pos + 12 + uint64_t(len) > b.size()) {
      if (std::memcmp(type, "IEND", 4) == 0) return info;  // an IEND without its CRC: nothing is missing
      throw Error(name + ": truncated PNG (file ends inside a chunk)");
    }
    if (png_crc(type, 4 + size_t(len)) != be32(&b[pos + 8 + size_t(len)]))
      throw Error(name + ": corrupt PNG (chunk '" + chunk_name(type) + "' at byte " + std::to_string(pos) +
                  " fails its CRC check)");
    if (std::memcmp(type, "IEND", 4) == 0) return info;
    pos += 12 + size_t(len);
  }
}

// JPEG: walk the marker segments from SOI; entropy-coded data after each SOS runs to the next
// marker that is not a stuffed 0xFF00 or a restart marker. A complete file reaches EOI. Walking
// the segments (rather than looking for FF D9 anywhere) is not fooled by the EOI of an EXIF
// thumbnail, which lives inside an APP1 segment.
HeaderInfo check_jpeg(const std::vector<uint8_t>& b, const std::string& name) {
  const std::string truncated = name + ": truncated JPEG (file ends before the end-of-image marker)";
  HeaderInfo info;
  const uint8_t* data = b.data();
  const size_t n = b.size();
  size_t pos = 2;
  while (true) {
    // Next marker; libjpeg skips stray bytes before it, so do we.
    const void* ff = pos < n ? std::memchr(data + pos, 0xFF, n - pos) : nullptr;
    if (!ff) throw Error(truncated);
    pos = static_cast<const uint8_t*>(ff) - data;
    while (pos < n && data[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= n) throw Error(truncated);
    const uint8_t marker = data[pos++];
    if (marker == 0xD9) return info;                                                  // EOI
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;  // no payload
    if (pos + 2 > n) throw Error(truncated);
    const size_t len = be16(data + pos);
    if (len < 2) throw Error(name + ": corrupt JPEG (segment length " + std::to_string(len) + ")");
    if (pos + len > n) throw Error(truncated);
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof && info.width < 0 && len >= 7) {
      info.height = be16(data + pos + 3);
      info.width = be16(data + pos + 5);
      if (info.height == 0) info.height = -1;  // defined later by a DNL marker
    }
    pos += len;
    if (marker == 0xDA) {  // SOS: skip the entropy-coded scan
      while (true) {
        const void* f = pos < n ? std::memchr(data + pos, 0xFF, n - pos) : nullptr;
        if (!f) throw Error(truncated);
        pos = static_cast<const uint8_t*>(f) - data;
        if (pos + 1 >= n) throw Error(truncated);
        const uint8_t next = data[pos + 1];
        if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) {
          pos += 2;
          continue;
        }
        if (next == 0xFF) {
          ++pos;
          continue;
        }
        break;  // a real marker: back to the segment walk
      }
    }
  }
}

HeaderInfo check_bmp(const std::vector<uint8_t>& b) {
  HeaderInfo info;
  if (b.size() < 26) return info;
  if (le32(&b[14]) == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit sizes
    info.width = le16(&b[18]);
    info.height = le16(&b[20]);
  } else {
    info.width = std::abs(int64_t(int32_t(le32(&b[18]))));
    info.height = std::abs(int64_t(int32_t(le32(&b[22]))));
  }
  return info;
}

HeaderInfo check_webp(const std::vector<uint8_t>& b) {
  HeaderInfo info;
  if (starts_with(b, "VP8X", 4, 12) && b.size() >= 30) {
    info.width = 1 + (int64_t(b[24]) | (int64_t(b[25]) << 8) | (int64_t(b[26]) << 16));
    info.height = 1 + (int64_t(b[27]) | (int64_t(b[28]) << 8) | (int64_t(b[29]) << 16));
  } else if (starts_with(b, "VP8 ", 4, 12) && b.size() >= 30) {
    info.width = le16(&b[26]) & 0x3fff;
    info.height = le16(&b[28]) & 0x3fff;
  } else if (starts_with(b, "VP8L", 4, 12) && b.size() >= 25) {
    uint32_t bits = le32(&b[21]);
    info.width = 1 + (bits & 0x3fff);
    info.height = 1 + ((bits >> 14) & 0x3fff);
  }
  return info;
}

void check_size(int64_t w, int64_t h, const ImageReadLimits& limits, const std::string& name) {
  if (w < 0 || h < 0) return;
  if (w == 0 || h == 0)
    throw Error(name + ": image has no pixels (" + std::to_string(w) + "x" + std::to_string(h) + ")");
  if (w > limits.max_pixels / h)
    throw Error(name + ": image is " + std::to_string(w) + "x" + std::to_string(h) + " = " + std::to_string(w * h) +
                " pixels, more than the limit of " + std::to_string(limits.max_pixels));
}

void quiet_opencv() {
  // OpenCV logs its own decoder complaints on stderr; we report every failure as a clipcap::Error.
  static std::once_flag once;
  std::call_once(once, [] { cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT); });
}

cv::Mat rgb_to_bgr_mat(const Image& rgb, const std::string& path) {
  if (rgb.width <= 0 || rgb.height <= 0 || rgb.pixels.size() != size_t(rgb.width * rgb.height * 3))
    throw Error(path + ": cannot write an image of " + std::to_string(rgb.width) + "x" + std::to_string(rgb.height) +
                " with " + std::to_string(rgb.pixels.size()) + " bytes of pixels");
  cv::Mat view(int(rgb.height), int(rgb.width), CV_8UC3, const_cast<uint8_t*>(rgb.pixels.data()));
  cv::Mat bgr;
  cv::cvtColor(view, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

std::string encode(const Image& rgb, const std::string& name, const char* ext, const std::vector<int>& params) {
  cv::Mat bgr = rgb_to_bgr_mat(rgb, name);
  std::vector<uchar> buf;
  bool ok = false;
  try {
    ok = cv::imencode(ext, bgr, buf, params);
  } catch (const cv::Exception& e) {
    throw Error(name + ": cannot encode " + std::string(ext + 1) + " (" + e.err + ")");
  }
  if (!ok) throw Error(name + ": cannot encode " + std::string(ext + 1));
  return std::string(buf.begin(), buf.end());
}

void check_jpeg_quality(int quality, const std::string& name) {
  if (quality < 1 || quality > 100)
    throw Error(name + ": JPEG quality " + std::to_string(quality) + " is outside 1..100");
}

}  // namespace

Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name, const ImageReadLimits& limits) {
  if (bytes.empty()) throw Error(name + ": empty file (0 bytes)");
  HeaderInfo info;
  if (starts_with(bytes, "\x89PNG\r\n\x1a\n", 8)) {
    info = check_png(bytes, name);
  } else if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) {
    info = check_jpeg(bytes, name);
  } else if (starts_with(bytes, "BM", 2)) {
    info = check_bmp(bytes);
  } else if (starts_with(bytes, "RIFF", 4) && starts_with(bytes, "WEBP", 4, 8)) {
    info = check_webp(bytes);
  } else if (!other_decodable_format(bytes)) {
    throw Error(name + ": not an image (" + kFormats + " expected)");
  }
  check_size(info.width, info.height, limits, name);

  quiet_opencv();
  // EXIF orientation is ignored on purpose: PIL's Image.open (and so HF) does not apply it.
  const int ignore_exif = cv::IMREAD_IGNORE_ORIENTATION;
  cv::Mat raw(1, int(bytes.size()), CV_8U, const_cast<uint8_t*>(bytes.data()));
  cv::Mat decoded;
  try {
    // PIL opens a 16-bit grayscale PNG as mode "I" and convert("RGB") clamps each value to 255;
    // OpenCV's IMREAD_COLOR would keep the high byte instead (which is what PIL does for 16-bit
    // RGB, RGBA and LA PNGs). So read the 16-bit values and clamp them ourselves.
    int flags = info.png_gray16 ? (cv::IMREAD_GRAYSCALE | cv::IMREAD_ANYDEPTH | ignore_exif)
                                : (cv::IMREAD_COLOR | ignore_exif);
    decoded = cv::imdecode(raw, flags);
  } catch (const cv::Exception& e) {
    throw Error(name + ": cannot decode image (" + e.err + ")");
  } catch (const std::exception& e) {
    throw Error(name + ": cannot decode image (" + e.what() + ")");
  }
  if (decoded.empty()) throw Error(name + ": not an image, or a corrupt one (no decoder could read it)");
  check_size(decoded.cols, decoded.rows, limits, name);

  Image img;
  img.width = decoded.cols;
  img.height = decoded.rows;
  img.pixels.resize(size_t(img.width * img.height * 3));
  if (decoded.type() == CV_16UC1) {
    for (int64_t y = 0; y < img.height; ++y) {
      const uint16_t* src = decoded.ptr<uint16_t>(int(y));
      uint8_t* dst = img.row(y);
      for (int64_t x = 0; x < img.width; ++x) {
        uint8_t v = uint8_t(std::min<uint16_t>(src[x], 255));
        dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = v;
      }
    }
  } else if (decoded.type() == CV_8UC3) {
    cv::Mat out(int(img.height), int(img.width), CV_8UC3, img.pixels.data());
    cv::cvtColor(decoded, out, cv::COLOR_BGR2RGB);
  } else {
    throw Error(name + ": unexpected decoded pixel type " + std::to_string(decoded.type()));
  }
  return img;
}

Image read_image(const std::string& path, const ImageReadLimits& limits) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(path + ": cannot open image (no such file)");
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": cannot open image (is a directory)");
  std::string contents = read_file(path);
  return decode_image(std::vector<uint8_t>(contents.begin(), contents.end()), path, limits);
}

std::string encode_jpeg(const Image& rgb, int quality) {
  check_jpeg_quality(quality, "image");
  return encode(rgb, "image", ".jpg", {cv::IMWRITE_JPEG_QUALITY, quality});
}

std::string encode_png(const Image& rgb) { return encode(rgb, "image", ".png", {}); }

void write_jpeg(const std::string& path, const Image& rgb, int quality) {
  check_jpeg_quality(quality, path);
  write_file_atomic(path, encode(rgb, path, ".jpg", {cv::IMWRITE_JPEG_QUALITY, quality}));
}

void write_png(const std::string& path, const Image& rgb) { write_file_atomic(path, encode(rgb, path, ".png", {})); }

}  // namespace clipcap
