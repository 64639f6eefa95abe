// Decoding image files into 8-bit RGB, as PIL's Image.open(path).convert("RGB") would.
//
//   clipcap::Image img = clipcap::read_image("photo.png");   // throws clipcap::Error naming the file
//   img.width, img.height, img.pixels (HWC, RGB, row-major)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace clipcap {

struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;  // height * width * 3, RGB
  uint8_t* row(int64_t y) { return pixels.data() + y * width * 3; }
  const uint8_t* row(int64_t y) const { return pixels.data() + y * width * 3; }
};

struct ImageReadLimits {
  int64_t max_pixels = 200'000'000;  // "absurd dimensions": refuse before allocating
};

// Gray, gray+alpha, RGBA (alpha dropped, not composited), palette and 16-bit inputs all come back
// as RGB with the values PIL's convert("RGB") gives: 16-bit RGB/RGBA/LA PNGs keep the high byte,
// 16-bit grayscale PNGs are clamped to 255 (PIL opens them as mode "I"). EXIF orientation is NOT
// applied (PIL's Image.open and HF don't either). PNG, JPEG, BMP, WebP, TIFF, PNM, JPEG 2000, Sun
// raster and Radiance HDR by signature; nothing else reaches OpenCV (its GDAL/GDCM fallbacks). Known
// difference: CMYK JPEGs may differ from PIL by 1 level (OpenCV's CMYK->RGB formula).
// Missing, empty, truncated and non-image files throw clipcap::Error("<path>: <problem>"); PNG,
// JPEG, BMP and WebP sizes are checked against `limits` from the header, before decoding.
// Not thread-hostile: safe to call from several threads. Silences OpenCV's own stderr logging.
Image read_image(const std::string& path, const ImageReadLimits& limits = {});
Image decode_image(const std::vector<uint8_t>& bytes, const std::string& name_for_errors,
                   const ImageReadLimits& limits = {});
// The file's bytes, in memory (for data: URLs); PNG is lossless: decode_image gives back the pixels.
std::string encode_jpeg(const Image& rgb, int quality = 92);
std::string encode_png(const Image& rgb);
void write_jpeg(const std::string& path, const Image& rgb, int quality = 92);  // atomic
void write_png(const std::string& path, const Image& rgb);                     // atomic

}  // namespace clipcap
