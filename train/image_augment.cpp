#include "train/image_augment.h"

#include <algorithm>
#include <cmath>

namespace clipcap {

ImageAugmentation draw_augmentation(const AugmentationSettings& s, std::mt19937_64& rng) {
  ImageAugmentation a;
  if (s.shift > 0) {
    std::uniform_int_distribution<int64_t> offset(-s.shift, s.shift);
    a.dx = offset(rng);
    a.dy = offset(rng);
  }
  if (s.scale > 0) a.zoom = std::uniform_real_distribution<double>(1 - s.scale, 1 + s.scale)(rng);
  if (s.blur > 0) a.blur = std::bernoulli_distribution(s.blur)(rng);
  if (s.posterize > 0 && std::bernoulli_distribution(s.posterize)(rng))
    a.bits = std::uniform_int_distribution<int>(3, 5)(rng);
  return a;
}

namespace {

// Whole-pixel translation: the exact pixels, no resampling.
Image translated(const Image& in, int64_t dx, int64_t dy) {
  Image out;
  out.width = in.width, out.height = in.height;
  out.pixels.resize(in.pixels.size());
  for (int64_t y = 0; y < in.height; ++y) {
    const uint8_t* src = in.row(std::clamp<int64_t>(y - dy, 0, in.height - 1));
    uint8_t* dst = out.row(y);
    for (int64_t x = 0; x < in.width; ++x) {
      const uint8_t* p = src + 3 * std::clamp<int64_t>(x - dx, 0, in.width - 1);
      dst[3 * x] = p[0], dst[3 * x + 1] = p[1], dst[3 * x + 2] = p[2];
    }
  }
  return out;
}

// Output pixel (x, y) samples the input at centre + (x - centre - dx) / zoom, bilinearly.
Image zoomed(const Image& in, double zoom, int64_t dx, int64_t dy) {
  Image out;
  out.width = in.width, out.height = in.height;
  out.pixels.resize(in.pixels.size());
  const double cx = (static_cast<double>(in.width) - 1) / 2, cy = (static_cast<double>(in.height) - 1) / 2;
  for (int64_t y = 0; y < in.height; ++y) {
    const double sy = std::clamp(cy + (static_cast<double>(y - dy) - cy) / zoom, 0.0, static_cast<double>(in.height - 1));
    const auto y0 = static_cast<int64_t>(sy);
    const int64_t y1 = std::min(y0 + 1, in.height - 1);
    const double fy = sy - static_cast<double>(y0);
    uint8_t* dst = out.row(y);
    for (int64_t x = 0; x < in.width; ++x) {
      const double sx = std::clamp(cx + (static_cast<double>(x - dx) - cx) / zoom, 0.0, static_cast<double>(in.width - 1));
      const auto x0 = static_cast<int64_t>(sx);
      const int64_t x1 = std::min(x0 + 1, in.width - 1);
      const double fx = sx - static_cast<double>(x0);
      for (int c = 0; c < 3; ++c) {
        const double top = in.row(y0)[3 * x0 + c] * (1 - fx) + in.row(y0)[3 * x1 + c] * fx;
        const double bottom = in.row(y1)[3 * x0 + c] * (1 - fx) + in.row(y1)[3 * x1 + c] * fx;
        dst[3 * x + c] = static_cast<uint8_t>(std::lround(top * (1 - fy) + bottom * fy));
      }
    }
  }
  return out;
}

// 3 x 3 binomial kernel (1 2 1 / 2 4 2 / 1 2 1) / 16, edges replicated.
Image blurred(const Image& in) {
  Image out;
  out.width = in.width, out.height = in.height;
  out.pixels.resize(in.pixels.size());
  const int w[3] = {1, 2, 1};
  for (int64_t y = 0; y < in.height; ++y)
    for (int64_t x = 0; x < in.width; ++x)
      for (int c = 0; c < 3; ++c) {
        int sum = 0;
        for (int j = -1; j <= 1; ++j)
          for (int i = -1; i <= 1; ++i) {
            const int64_t yy = std::clamp<int64_t>(y + j, 0, in.height - 1), xx = std::clamp<int64_t>(x + i, 0, in.width - 1);
            sum += w[j + 1] * w[i + 1] * in.row(yy)[3 * xx + c];
          }
        out.row(y)[3 * x + c] = static_cast<uint8_t>((sum + 8) / 16);
      }
  return out;
}

// Each channel rounded to 2^bits evenly spaced levels from 0 to 255 (white and black stay exact).
void posterize(Image& img, int bits) {
  const int levels = (1 << bits) - 1;
  for (uint8_t& v : img.pixels) v = static_cast<uint8_t>((v * levels + 127) / 255 * 255 / levels);
}

}  // namespace

Image augment(const Image& in, const ImageAugmentation& a) {
  if (a.identity()) return in;
  Image out = a.zoom != 1 ? zoomed(in, a.zoom, a.dx, a.dy) : (a.dx != 0 || a.dy != 0) ? translated(in, a.dx, a.dy) : in;
  if (a.blur) out = blurred(out);
  if (a.bits < 8) posterize(out, a.bits);
  return out;
}

}  // namespace clipcap
