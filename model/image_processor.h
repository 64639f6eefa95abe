// HF CLIPImageProcessor, bit-exact: RGB conversion like PIL convert("RGB"), shortest-edge resize
// with Pillow's antialiased fixed-point bicubic, centre crop (zero padding when smaller), rescale,
// normalise. Driven by preprocessor_config.json (both the dict and the int forms of size/crop).
//
//   auto proc = clipcap::ImageProcessor::from_dir("openai-clip-vit-base-patch32");
//   clipcap::Image img = clipcap::read_image("cat.jpg");      // image/image_io.h
//   torch::Tensor px = proc.preprocess(img);                  // (3, crop_h, crop_w) float32
#pragma once

#include <torch/types.h>

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "image/image_io.h"

namespace clipcap {

struct ImageProcessorConfig {
  bool do_resize = true, do_center_crop = true, do_rescale = true, do_normalize = true, do_convert_rgb = true;
  int64_t shortest_edge = 224;
  int64_t crop_height = 224, crop_width = 224;
  int resample = 3;  // PIL BICUBIC; others are rejected with a clear error
  double rescale_factor = 1.0 / 255.0;
  std::vector<double> image_mean = {0.48145466, 0.4578275, 0.40821073};
  std::vector<double> image_std = {0.26862954, 0.26130258, 0.27577711};

  static ImageProcessorConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
};

class ImageProcessor {
 public:
  explicit ImageProcessor(ImageProcessorConfig cfg) : cfg_(std::move(cfg)) {}
  static ImageProcessor from_dir(const std::string& dir);  // reads dir/preprocessor_config.json

  // The stages, exposed for tests and tools; all take and return 8-bit RGB HWC images.
  Image resize(const Image& rgb) const;       // shortest edge, Pillow bicubic
  Image center_crop(const Image& rgb) const;  // with zero padding when smaller
  torch::Tensor to_pixel_values(const Image& rgb) const;  // rescale + normalise -> (3, H, W) f32
  torch::Tensor preprocess(const Image& img) const;        // all of the above -> (3, ch, cw)
  // resize + center_crop in one step: only the pixels the crop keeps are resampled (same bytes).
  Image resize_and_crop(const Image& rgb) const;
  // preprocess of each image, stacked -> (N, 3, ch, cw); throws if the sizes differ (no crop).
  torch::Tensor preprocess_batch(const std::vector<Image>& images) const;

  const ImageProcessorConfig& config() const { return cfg_; }

 private:
  ImageProcessorConfig cfg_;
};

// Pillow's Image.resize(size, BICUBIC, reducing_gap=None) on an 8-bit RGB image.
Image pil_resize_bicubic(const Image& rgb, int64_t out_w, int64_t out_h);

}  // namespace clipcap
