// The CLIP trainer's image augmentations (train/image_augment.h): what each one does to pixels, and
// that the draws of the original recipe (translation only) are the ones it always made.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "train/image_augment.h"

namespace clipcap {
namespace {

// A 32 x 32 test card: white background, a black square, a red-to-blue ramp row.
Image card() {
  Image im;
  im.width = im.height = 32;
  im.pixels.assign(32 * 32 * 3, 255);
  for (int y = 10; y < 20; ++y)
    for (int x = 10; x < 20; ++x)
      for (int c = 0; c < 3; ++c) im.row(y)[3 * x + c] = 0;
  for (int x = 0; x < 32; ++x) {
    im.row(25)[3 * x] = static_cast<uint8_t>(8 * x);
    im.row(25)[3 * x + 1] = 40;
    im.row(25)[3 * x + 2] = static_cast<uint8_t>(255 - 8 * x);
  }
  return im;
}

TEST(ImageAugment, IdentityLeavesTheBytes) {
  const Image in = card();
  EXPECT_EQ(augment(in, ImageAugmentation{}).pixels, in.pixels);
  ImageAugmentation unit_zoom;
  unit_zoom.zoom = 1.0;
  EXPECT_EQ(augment(in, unit_zoom).pixels, in.pixels);
}

TEST(ImageAugment, TranslationMovesWholePixelsAndReplicatesTheEdge) {
  const Image in = card();
  ImageAugmentation a;
  a.dx = 2;
  a.dy = -1;
  const Image out = augment(in, a);
  for (int y = 0; y < 31; ++y)
    for (int x = 2; x < 32; ++x)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(out.row(y)[3 * x + c], in.row(y + 1)[3 * (x - 2) + c]) << x << "," << y;
  for (int c = 0; c < 3; ++c) EXPECT_EQ(out.row(25)[c], in.row(26)[c]);  // the gap: the edge column
}

TEST(ImageAugment, ZoomGrowsTheSquareAboutTheCentre) {
  const Image in = card();
  ImageAugmentation a;
  a.zoom = 1.3;
  const Image out = augment(in, a);
  auto black = [](const Image& im) {
    int n = 0;
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) n += im.row(y)[3 * x] < 128;
    return n;
  };
  EXPECT_GT(black(out), black(in) * 1.4);  // area grows by ~1.69
  EXPECT_LT(out.row(15)[3 * 15], 10);      // the centre stays black
  EXPECT_EQ(out.row(0)[0], 255);           // the corner stays white
}

TEST(ImageAugment, BlurSmoothsEdgesAndKeepsFlatAreas) {
  const Image in = card();
  ImageAugmentation a;
  a.blur = true;
  const Image out = augment(in, a);
  EXPECT_EQ(out.row(2)[3 * 2], 255);                  // flat white
  EXPECT_EQ(out.row(15)[3 * 15], 0);                  // flat black
  EXPECT_GT(out.row(15)[3 * 10], 0);                  // the square's edge is softened
  EXPECT_LT(out.row(15)[3 * 10], 255);
}

TEST(ImageAugment, PosterizeKeepsBlackWhiteAndFewLevels) {
  const Image in = card();
  ImageAugmentation a;
  a.bits = 3;
  const Image out = augment(in, a);
  std::set<int> levels;
  for (uint8_t v : out.pixels) levels.insert(v);
  EXPECT_LE(levels.size(), 8u);
  EXPECT_TRUE(levels.count(0) && levels.count(255));
  // Colour order survives: the ramp's red channel never decreases.
  for (int x = 1; x < 32; ++x) EXPECT_GE(out.row(25)[3 * x], out.row(25)[3 * (x - 1)]);
}

TEST(ImageAugment, TranslationOnlyDrawsTheOriginalStream) {
  // The committed CLIP was trained when translation was the only augmentation: its draws (dx, dy
  // from one uniform_int_distribution) must not change, or the recipe no longer reproduces it.
  AugmentationSettings s;
  s.shift = 2;
  std::mt19937_64 a(100), b(100);
  std::uniform_int_distribution<int64_t> offset(-2, 2);
  for (int i = 0; i < 50; ++i) {
    const ImageAugmentation d = draw_augmentation(s, a);
    const int64_t dx = offset(b), dy = offset(b);
    ASSERT_EQ(d.dx, dx);
    ASSERT_EQ(d.dy, dy);
    EXPECT_EQ(d.zoom, 1.0);
    EXPECT_FALSE(d.blur);
    EXPECT_EQ(d.bits, 8);
  }
  // With everything on, every kind shows up.
  s.scale = 0.2, s.blur = 0.5, s.posterize = 0.5;
  int zoomed = 0, blurred = 0, posterized = 0;
  for (int i = 0; i < 200; ++i) {
    const ImageAugmentation d = draw_augmentation(s, a);
    zoomed += d.zoom != 1.0 && d.zoom >= 0.8 && d.zoom <= 1.2;
    blurred += d.blur;
    posterized += d.bits >= 3 && d.bits <= 5;
  }
  EXPECT_EQ(zoomed, 200);
  EXPECT_GT(blurred, 60);
  EXPECT_GT(posterized, 60);
}

}  // namespace
}  // namespace clipcap
