#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "image/caption_render.h"
#include "tests/test_support.h"

namespace clipcap {
namespace {

Image gradient(int64_t w, int64_t h) {
  Image img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<size_t>(w * h * 3));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      uint8_t* p = img.row(y) + x * 3;
      p[0] = static_cast<uint8_t>(40 + (x * 150) / w);
      p[1] = static_cast<uint8_t>(60 + (y * 150) / h);
      p[2] = 120;
    }
  return img;
}

struct BandInk {
  int64_t dark = 0, white = 0, total = 0;
  int64_t first_row = -1, last_row = -1;  // rows (relative to the band) holding dark pixels
  int64_t first_col = -1, last_col = -1;
};

// Dark pixels (text) and white pixels (paper) in the rows from `top` down.
BandInk ink_below(const Image& img, int64_t top) {
  BandInk ink;
  for (int64_t y = top; y < img.height; ++y)
    for (int64_t x = 0; x < img.width; ++x) {
      const uint8_t* p = img.row(y) + x * 3;
      ++ink.total;
      if (p[0] > 250 && p[1] > 250 && p[2] > 250) ++ink.white;
      if (p[0] < 100 && p[1] < 100 && p[2] < 100) {
        ++ink.dark;
        if (ink.first_row < 0) ink.first_row = y - top;
        ink.last_row = y - top;
        if (ink.first_col < 0 || x < ink.first_col) ink.first_col = x;
        ink.last_col = std::max(ink.last_col, x);
      }
    }
  return ink;
}

TEST(CaptionRender, ImageKeptOnTopAndCaptionInAWhiteBandBelow) {
  const Image img = gradient(640, 480);
  const Image out = render_caption(img, "A dog runs on the grass.");
  ASSERT_EQ(out.width, img.width);
  ASSERT_GT(out.height, img.height);
  for (int64_t y = 0; y < img.height; ++y)
    ASSERT_EQ(0, std::memcmp(out.row(y), img.row(y), static_cast<size_t>(img.width * 3))) << "row " << y;
  const BandInk ink = ink_below(out, img.height);
  EXPECT_GT(ink.dark, 100) << "no text drawn";
  EXPECT_GT(ink.white, ink.total / 2) << "the band is not mostly white paper";
  EXPECT_GT(ink.first_row, 0) << "text touches the image";
  EXPECT_LT(ink.last_row, out.height - img.height - 1) << "text runs off the bottom";
}

TEST(CaptionRender, LongCaptionsWrapInsideTheWidthAndGrowTheBand) {
  const Image img = gradient(400, 300);
  const Image one_line = render_caption(img, "A cat.");
  std::string long_caption;
  for (int i = 0; i < 12; ++i) long_caption += "a very long caption about a dog and a cat ";
  const Image wrapped = render_caption(img, long_caption);
  EXPECT_EQ(wrapped.width, img.width);
  const int64_t short_band = one_line.height - img.height, long_band = wrapped.height - img.height;
  EXPECT_GT(long_band, 4 * short_band) << "a caption of ~500 characters should take many lines";
  const BandInk ink = ink_below(wrapped, img.height);
  EXPECT_GT(ink.first_col, 0) << "text clipped at the left edge";
  EXPECT_LT(ink.last_col, img.width - 1) << "text clipped at the right edge";

  // One word wider than the image is cut, not drawn past the edge.
  const Image cut = render_caption(img, std::string(200, 'W'));
  const BandInk cut_ink = ink_below(cut, img.height);
  EXPECT_GT(cut.height - img.height, 2 * short_band);
  EXPECT_LT(cut_ink.last_col, img.width - 1);
}

TEST(CaptionRender, TinyImagesAreUpscaledSoTheTextStaysReadable) {
  const Image img = gradient(20, 13);
  const Image out = render_caption(img, "A small red icon.");
  const CaptionRenderOptions defaults;
  EXPECT_EQ(out.width, defaults.min_width);
  const int64_t image_rows = (13 * defaults.min_width + 10) / 20;  // aspect ratio kept
  const BandInk ink = ink_below(out, image_rows);
  EXPECT_GT(ink.dark, 100);
  EXPECT_GE(ink.last_row - ink.first_row + 1, defaults.min_text_height) << "text too small to read";
  // The upscaled image is nearest-neighbour: the top-left source pixel fills a block.
  const uint8_t* p = out.row(5) + 5 * 3;
  EXPECT_EQ(p[0], img.pixels[0]);
  EXPECT_EQ(p[1], img.pixels[1]);
}

TEST(CaptionRender, FontScalesWithTheImage) {
  const Image small = render_caption(gradient(400, 100), "Scale");
  const Image large = render_caption(gradient(3840, 2160), "Scale");
  const BandInk small_ink = ink_below(small, 100), large_ink = ink_below(large, 2160);
  const int64_t small_h = small_ink.last_row - small_ink.first_row, large_h = large_ink.last_row - large_ink.first_row;
  EXPECT_GT(large_h, 6 * small_h) << "4K text should be about 9.6x taller than at 400 px";
  EXPECT_LT(large_h, 14 * small_h);
}

TEST(CaptionRender, EmptyAndNonAsciiCaptionsStillRender) {
  const Image img = gradient(400, 300);
  const Image empty = render_caption(img, "");
  EXPECT_GT(empty.height, img.height);  // a band is always there, so rendered sets line up
  EXPECT_EQ(ink_below(empty, img.height).dark, 0);
  const Image emoji = render_caption(img, "Un caf\xC3\xA9 \xF0\x9F\x98\x80\ttab");
  EXPECT_GT(ink_below(emoji, img.height).dark, 50);
}

TEST(CaptionRender, RefusesAnImageWithoutPixels) {
  test::expect_error([] { render_caption(Image{}, "x"); }, {"render_caption", "0x0"});
  Image bad = gradient(4, 4);
  bad.pixels.resize(5);
  test::expect_error([&] { render_caption(bad, "x"); }, {"4x4", "5 bytes"});
}

}  // namespace
}  // namespace clipcap
