// Image decoding: every input comes back as the 8-bit RGB PIL's Image.open(...).convert("RGB")
// gives, and bad files are refused with an error naming the file.
#include <gtest/gtest.h>

#include <cstring>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_util.h"
#include "image/image_io.h"
#include "tests/test_support.h"

namespace clipcap {
namespace {

using test::fixture;
using test::source_path;
using test::temp_dir;

// Small files (tests/data/pil_decoded/NAME) beside the pixels Pillow 9.4 returns for them,
// Image.open(NAME).convert("RGB").tobytes() (NAME.rgb), generated once.
std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
std::string pil_case(const std::string& name) {
  return source_path("tests/data/pil_decoded/" + name);
}
std::vector<uint8_t> encoded(const std::string& name) { return read_bytes(pil_case(name)); }
std::vector<uint8_t> pil_rgb(const std::string& name) { return read_bytes(pil_case(name + ".rgb")); }

std::string write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return path;
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::string s = read_file(path);
  return {s.begin(), s.end()};
}

// Runs read_image and returns the clipcap::Error message; fails on success or any other exception.
std::string read_error(const std::string& path, const ImageReadLimits& limits = {}) {
  try {
    read_image(path, limits);
    ADD_FAILURE() << "no error reading " << path;
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type reading " << path << ": " << e.what();
  }
  return "";
}

void expect_message(const std::string& msg, const std::string& path, const std::string& problem) {
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find(problem), std::string::npos) << msg;
}

// ---- decoding like PIL --------------------------------------------------------------------------

TEST(ImageIo, FixtureImagesOfEveryModeDecodeToTheirSize) {
  auto manifest = read_json(fixture("manifest.json"));
  for (const auto& entry : manifest["images"]) {
    SCOPED_TRACE(entry["name"].get<std::string>());
    Image img = read_image(fixture(entry["file"]));
    EXPECT_EQ(img.width, entry["width"].get<int64_t>());
    EXPECT_EQ(img.height, entry["height"].get<int64_t>());
    EXPECT_EQ(img.pixels.size(), size_t(img.width * img.height * 3));
  }
}

TEST(ImageIo, PngModesGiveThePixelsPilGives) {
  // 16-bit gray: PIL clamps to 255 (mode "I"); 16-bit RGB/LA: PIL keeps the high byte;
  // RGBA: alpha dropped, not composited; 2-bit gray: scaled to 0..255.
  for (const char* name : {"gray16.png", "rgb16.png", "la16.png", "rgba8.png", "gray2.png"}) {
    SCOPED_TRACE(name);
    Image img = decode_image(encoded(name), name);
    EXPECT_EQ(img.width, 3);
    EXPECT_EQ(img.height, 2);
    EXPECT_EQ(img.pixels, pil_rgb(name));
  }
}

TEST(ImageIo, JpegsGiveThePixelsPilGivesAndIgnoreExifOrientation) {
  for (const char* name : {"baseline.jpg", "progressive.jpg", "exif-rotate-90.jpg"}) {
    SCOPED_TRACE(name);
    Image img = decode_image(encoded(name), name);
    EXPECT_EQ(img.width, 9);  // stored size, not the EXIF-rotated 7x9
    EXPECT_EQ(img.height, 7);
    EXPECT_EQ(img.pixels, pil_rgb(name));
  }
}

TEST(ImageIo, JpegWithBytesAfterTheEndMarkerStillReads) {
  std::vector<uint8_t> padded = encoded("baseline.jpg");
  padded.insert(padded.end(), 100, 0);
  EXPECT_EQ(decode_image(padded, "padded.jpg").pixels, pil_rgb("baseline.jpg"));
}

// ---- writing ------------------------------------------------------------------------------------

TEST(ImageIo, PngRoundTripIsLosslessAndJpegIsClose) {
  std::string dir = temp_dir("image-io");
  Image img;  // smooth, with a different ramp per channel: a channel swap would show
  img.width = 64;
  img.height = 48;
  for (int64_t y = 0; y < img.height; ++y)
    for (int64_t x = 0; x < img.width; ++x)
      img.pixels.insert(img.pixels.end(), {uint8_t(x * 4), uint8_t(y * 5), uint8_t(200 - x - y)});
  write_png(dir + "/a.png", img);
  EXPECT_EQ(read_image(dir + "/a.png").pixels, img.pixels);
  write_jpeg(dir + "/a.jpg", img, 95);
  EXPECT_EQ(file_bytes(dir + "/a.jpg")[0], 0xFF);  // really a JPEG, whatever the name says
  Image back = read_image(dir + "/a.jpg");
  ASSERT_EQ(back.pixels.size(), img.pixels.size());
  double total_diff = 0;
  for (size_t i = 0; i < img.pixels.size(); ++i) total_diff += std::abs(back.pixels[i] - img.pixels[i]);
  EXPECT_LT(total_diff / img.pixels.size(), 2.0);
  // Atomic writes leave only the final files behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 2);
}

TEST(ImageIo, WritingABadImageOrQualityIsAnError) {
  std::string dir = temp_dir("image-io");
  Image empty;
  try {
    write_png(dir + "/empty.png", empty);
    FAIL();
  } catch (const Error& e) {
    expect_message(e.what(), dir + "/empty.png", "cannot write");
  }
  EXPECT_THROW(write_jpeg(dir + "/q.jpg", decode_image(encoded("baseline.jpg"), "x"), 0), Error);
  EXPECT_FALSE(std::filesystem::exists(dir + "/q.jpg"));
}

// ---- bad input ----------------------------------------------------------------------------------

TEST(ImageIoBadInput, MissingFile) {
  std::string path = temp_dir("image-io") + "/nope.jpg";
  expect_message(read_error(path), path, "no such file");
}

TEST(ImageIoBadInput, EmptyFile) {
  std::string path = write_bytes(temp_dir("image-io") + "/empty.png", {});
  expect_message(read_error(path), path, "empty file");
}

TEST(ImageIoBadInput, TextFile) {
  std::string text = "this is not an image\n";
  std::string path = write_bytes(temp_dir("image-io") + "/notes.jpg", {text.begin(), text.end()});
  expect_message(read_error(path), path, "not an image");
}

TEST(ImageIoBadInput, TruncatedPng) {
  auto manifest = read_json(fixture("manifest.json"));
  auto bytes = file_bytes(fixture(manifest["images"][0]["file"]));
  bytes.resize(bytes.size() / 2);
  std::string path = write_bytes(temp_dir("image-io") + "/cut.png", bytes);
  expect_message(read_error(path), path, "truncated PNG");
  // Cut just before the IEND chunk: all pixel data is there, the file is still incomplete.
  auto whole = file_bytes(fixture(manifest["images"][0]["file"]));
  whole.resize(whole.size() - 12);
  write_bytes(path, whole);
  expect_message(read_error(path), path, "truncated PNG");
}

TEST(ImageIoBadInput, ADamagedPngChunkIsOneMessageAndNothingFromLibpng) {
  auto manifest = read_json(fixture("manifest.json"));
  auto bytes = file_bytes(fixture(manifest["images"][0]["file"]));
  // The first IDAT's first data byte + 20, flipped: libpng would print "libpng error: IDAT: CRC
  // error" on stderr before OpenCV gives up.
  const std::string png(bytes.begin(), bytes.end());
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  bytes[idat + 4 + 20] ^= 0x10;
  std::string path = write_bytes(temp_dir("image-io") + "/flipped.png", bytes);
  testing::internal::CaptureStderr();
  const std::string message = read_error(path);
  const std::string err = testing::internal::GetCapturedStderr();
  expect_message(message, path, "corrupt PNG (chunk 'IDAT' at byte " + std::to_string(idat - 4) + " fails its CRC check)");
  EXPECT_EQ(err, "");
}

// Found by tests/fuzz/fuzz_image_decode: bytes in no format clipcap reads went on to OpenCV's
// GDAL and GDCM fallbacks, and a damaged DICOM file aborted the process in a GDCM assert. Such
// files are refused by their signature, before any decoder sees them.
TEST(ImageIoBadInput, FormatsOutsideTheListAreRefusedBeforeAnyDecoder) {
  std::vector<uint8_t> dicom(132, 0xff);
  std::memcpy(dicom.data() + 128, "DICM", 4);
  dicom.insert(dicom.end(), 64, 0xff);
  std::vector<uint8_t> j2k_dicom = dicom;  // a JPEG 2000 codestream's signature, and "DICM" at 128
  std::memcpy(j2k_dicom.data(), "\xff\x4f\xff\x51", 4);
  const std::string dir = temp_dir("image-io");
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::vector<uint8_t>>>{
           {"scan.dcm", dicom}, {"anim.gif", {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0}}, {"j2k.dcm", j2k_dicom}}) {
    const std::string path = write_bytes(dir + "/" + name, bytes);
    testing::internal::CaptureStderr();
    const std::string message = read_error(path);
    EXPECT_EQ(testing::internal::GetCapturedStderr(), "") << name;
    expect_message(message, path, "not an image (PNG, JPEG, BMP, WebP, TIFF, PNM, JPEG 2000, Sun raster or Radiance HDR expected)");
  }
  // The formats of the list still decode: a binary PPM (P6), 2 x 1.
  const std::string ppm = write_bytes(dir + "/two.ppm", {'P', '6', '\n', '2', ' ', '1', '\n', '2', '5', '5', '\n', 1, 2, 3, 4, 5, 6});
  const Image img = read_image(ppm);
  EXPECT_EQ(img.width, 2);
  EXPECT_EQ(img.pixels, (std::vector<uint8_t>{1, 2, 3, 4, 5, 6}));
}

TEST(ImageIoBadInput, TruncatedJpeg) {
  std::string dir = temp_dir("image-io");
  Image img = read_image(fixture(read_json(fixture("manifest.json"))["images"][0]["file"]));
  write_jpeg(dir + "/whole.jpg", img);
  auto bytes = file_bytes(dir + "/whole.jpg");
  for (size_t keep : {bytes.size() - 2, bytes.size() * 2 / 3, size_t(300)}) {
    SCOPED_TRACE(keep);
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + keep);
    std::string path = write_bytes(dir + "/cut.jpg", cut);
    expect_message(read_error(path), path, "truncated JPEG");
  }
}

// A valid-looking PNG whose header claims 100000 x 100000 pixels: refused before decoding.
TEST(ImageIoBadInput, AbsurdDimensionsAreRefusedFromTheHeader) {
  auto crc32 = [](const std::vector<uint8_t>& d) {
    uint32_t c = 0xFFFFFFFFu;
    for (uint8_t b : d) {
      c ^= b;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
  };
  auto put32 = [](std::vector<uint8_t>& v, uint32_t x) {
    for (int s = 24; s >= 0; s -= 8) v.push_back(uint8_t(x >> s));
  };
  auto chunk = [&](std::vector<uint8_t>& png, const char* type, const std::vector<uint8_t>& data) {
    put32(png, uint32_t(data.size()));
    std::vector<uint8_t> body(type, type + 4);
    body.insert(body.end(), data.begin(), data.end());
    png.insert(png.end(), body.begin(), body.end());
    put32(png, crc32(body));
  };
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  put32(ihdr, 100000);
  put32(ihdr, 100000);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});
  chunk(png, "IEND", {});
  std::string path = write_bytes(temp_dir("image-io") + "/huge.png", png);
  std::string msg = read_error(path);
  expect_message(msg, path, "100000x100000");
  expect_message(msg, path, "limit");
  // A lower limit applies to ordinary images too.
  ImageReadLimits small;
  small.max_pixels = 10;
  expect_message(read_error(fixture(read_json(fixture("manifest.json"))["images"][0]["file"]), small), "pixels",
                 "limit");
}

}  // namespace
}  // namespace clipcap
