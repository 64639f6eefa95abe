// An image with its caption drawn under it, for looking at captions (clipcap-eval --render, the
// image command's rendered output).
//
//   clipcap::Image img = clipcap::read_image("photo.jpg");                // image/image_io.h
//   clipcap::Image out = clipcap::render_caption(img, "A dog runs on the grass.");
//   clipcap::write_jpeg("photo-captioned.jpg", out);
//
// The result is the image with a white band below it holding the caption in black, wrapped to the
// image width. The font size follows the image width, so a 4K frame and a thumbnail both read at
// the same relative size. Images narrower than `min_width` are first upscaled (keeping their
// aspect ratio; nearest-neighbour when the factor is 4 or more so tiny images stay crisp, bilinear
// otherwise): a 20x13 icon would otherwise get a band a few pixels high. The text is drawn with
// OpenCV's Hershey font, which knows ASCII only: every other character is drawn as '?'.
#pragma once

#include <string>

#include "image/image_io.h"

namespace clipcap {

struct CaptionRenderOptions {
  int min_width = 384;               // narrower images are upscaled to this width first
  double text_height_ratio = 1.0 / 28;  // cap height of the text relative to the image width
  int min_text_height = 12;          // pixels; keeps text legible at min_width
};

// Throws clipcap::Error for an empty image (no pixels).
Image render_caption(const Image& image, const std::string& caption, const CaptionRenderOptions& options = {});

}  // namespace clipcap
