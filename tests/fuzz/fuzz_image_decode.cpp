// libFuzzer target: image decoding (image/image_io.h) on any bytes: the header checks (PNG chunks
// and CRCs, JPEG segments, sizes against the pixel limit), then OpenCV's decoders and the
// conversion to RGB. A decoded image has the pixels its size says.
#include <cstdlib>
#include <vector>

#include "image/image_io.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  clipcap::ImageReadLimits limits;
  limits.max_pixels = 4'000'000;  // within libFuzzer's memory limit
  clipcap::fuzz::refused_or_ok([&] {
    const clipcap::Image img = clipcap::decode_image(bytes, "input.img", limits);
    if (img.width <= 0 || img.height <= 0 || img.pixels.size() != size_t(img.width * img.height * 3)) std::abort();
  });
  return 0;
}
