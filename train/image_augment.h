// The image augmentations of `clipcap-train clip`, for art that changes style between training and
// use (the emoji default learns apple/google/facebook art and is judged on twitter's): translation,
// zoom, blur and colour quantisation. No flips (direction is in names like "facing right") and no
// hue or saturation jitter (skin tones and flags are named by their colours).
//
//   std::mt19937_64 rng(100);
//   clipcap::ImageAugmentation a = clipcap::draw_augmentation(settings, rng);   // one image's draw
//   clipcap::Image out = clipcap::augment(image, a);
#pragma once

#include <cstdint>
#include <random>

#include "image/image_io.h"

namespace clipcap {

struct AugmentationSettings {
  int64_t shift = 0;       // translation of up to +-shift pixels
  double scale = 0;        // zoom by a factor drawn from [1 - scale, 1 + scale] about the centre
  double blur = 0;         // probability of a 3 x 3 binomial blur
  double posterize = 0;    // probability of keeping only 3 to 5 bits per channel
  bool any() const { return shift > 0 || scale > 0 || blur > 0 || posterize > 0; }
};

struct ImageAugmentation {  // one image's draw; the default changes nothing
  int64_t dx = 0, dy = 0;
  double zoom = 1;
  bool blur = false;
  int bits = 8;
  bool identity() const { return dx == 0 && dy == 0 && zoom == 1 && !blur && bits >= 8; }
};

// Draws only what the settings enable, translation first: with only `shift` set, the stream of
// draws is the one clipcap has always used (trained models stay reproducible).
ImageAugmentation draw_augmentation(const AugmentationSettings& s, std::mt19937_64& rng);

// Zoom and translation in one bilinear resample (edge pixels replicated outward), then blur, then
// quantisation. An identity draw returns the image unchanged, byte for byte; a translation alone
// moves whole pixels.
Image augment(const Image& in, const ImageAugmentation& a);

}  // namespace clipcap
