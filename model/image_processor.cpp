#include "model/image_processor.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"

namespace clipcap {

// ---- config -------------------------------------------------------------------------------------

namespace {

// HF get_size_dict: `"size": S` means shortest edge S; `"crop_size": c` means c x c.
int64_t read_shortest_edge(const nlohmann::json& j, const std::string& where, int64_t fallback) {
  if (!j.contains("size") || j["size"].is_null()) return fallback;
  const auto& s = j["size"];
  if (s.is_number_integer()) return s.get<int64_t>();
  if (s.is_object()) {
    if (s.contains("shortest_edge")) return json_require<int64_t>(s, "shortest_edge", where + ": size");
    throw Error(where + ": size: " + s.dump() +
                " is not supported (CLIPImageProcessor needs {\"shortest_edge\": N} or an integer)");
  }
  throw Error(where + ": size: expected an integer or {\"shortest_edge\": N}, got " + s.dump());
}

void read_crop_size(const nlohmann::json& j, const std::string& where, int64_t& h, int64_t& w) {
  if (!j.contains("crop_size") || j["crop_size"].is_null()) return;
  const auto& c = j["crop_size"];
  if (c.is_number_integer()) {
    h = w = c.get<int64_t>();
    return;
  }
  if (c.is_object()) {
    h = json_require<int64_t>(c, "height", where + ": crop_size");
    w = json_require<int64_t>(c, "width", where + ": crop_size");
    return;
  }
  throw Error(where + ": crop_size: expected an integer or {\"height\": h, \"width\": w}, got " + c.dump());
}

std::vector<double> read_per_channel(const nlohmann::json& j, const std::string& key,
                                     const std::vector<double>& fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const auto& v = j[key];
  if (v.is_number()) return std::vector<double>(3, v.get<double>());  // HF broadcasts a scalar
  auto out = json_require<std::vector<double>>(j, key, where);
  if (out.size() != 3)
    throw Error(where + ": " + key + ": expected 3 values (one per RGB channel), got " + std::to_string(out.size()));
  return out;
}

}  // namespace

ImageProcessorConfig ImageProcessorConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": expected a JSON object");
  ImageProcessorConfig c;
  c.do_resize = json_value<bool>(j, "do_resize", c.do_resize, where);
  c.do_center_crop = json_value<bool>(j, "do_center_crop", c.do_center_crop, where);
  c.do_rescale = json_value<bool>(j, "do_rescale", c.do_rescale, where);
  c.do_normalize = json_value<bool>(j, "do_normalize", c.do_normalize, where);
  c.do_convert_rgb = json_value<bool>(j, "do_convert_rgb", c.do_convert_rgb, where);
  c.shortest_edge = read_shortest_edge(j, where, c.shortest_edge);
  read_crop_size(j, where, c.crop_height, c.crop_width);
  c.resample = json_value<int>(j, "resample", c.resample, where);
  c.rescale_factor = json_value<double>(j, "rescale_factor", c.rescale_factor, where);
  c.image_mean = read_per_channel(j, "image_mean", c.image_mean, where);
  c.image_std = read_per_channel(j, "image_std", c.image_std, where);

  if (c.resample != 3)
    throw Error(where + ": resample: " + std::to_string(c.resample) +
                " is not supported (only 3 = PIL bicubic, what CLIP uses)");
  if (c.shortest_edge <= 0) throw Error(where + ": size: shortest_edge must be positive");
  if (c.crop_height <= 0 || c.crop_width <= 0) throw Error(where + ": crop_size: must be positive");
  for (double s : c.image_std)
    if (s == 0.0) throw Error(where + ": image_std: must not contain 0");
  return c;
}

nlohmann::json ImageProcessorConfig::to_json() const {
  return {{"do_resize", do_resize},
          {"do_center_crop", do_center_crop},
          {"do_rescale", do_rescale},
          {"do_normalize", do_normalize},
          {"do_convert_rgb", do_convert_rgb},
          {"size", {{"shortest_edge", shortest_edge}}},
          {"crop_size", {{"height", crop_height}, {"width", crop_width}}},
          {"resample", resample},
          {"rescale_factor", rescale_factor},
          {"image_mean", image_mean},
          {"image_std", image_std},
          {"image_processor_type", "CLIPImageProcessor"}};
}

ImageProcessor ImageProcessor::from_dir(const std::string& dir) {
  std::string path = dir + "/preprocessor_config.json";
  return ImageProcessor(ImageProcessorConfig::from_json(read_json(path), path));
}

// ---- Pillow's bicubic resample ------------------------------------------------------------------
//
// Pillow (libImaging/Resample.c) resizes in two separable passes with per-output-pixel weights
// computed in double, normalised, then quantised to 22 fractional bits; each pass rounds and
// clamps to 8 bits. Reproducing every one of those steps is what makes the output bit-exact.

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Fixed-point weights of one axis: output pixel i reads input [first[i], first[i] + count[i]).
struct AxisWeights {
  int taps = 0;  // row stride of `weights`
  std::vector<int> first, count;
  std::vector<int32_t> weights;  // out_size * taps
};

AxisWeights axis_weights(int64_t in_size, int64_t out_size) {
  constexpr double support_1 = 2.0;  // bicubic support at scale 1
  // Pillow computes in1 - in0 in float before widening; exact for any realistic size.
  double scale = static_cast<double>(static_cast<float>(in_size)) / static_cast<double>(out_size);
  double filterscale = std::max(scale, 1.0);
  double support = support_1 * filterscale;
  AxisWeights w;
  w.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  w.first.resize(out_size);
  w.count.resize(out_size);
  w.weights.assign(out_size * w.taps, 0);
  std::vector<double> k(w.taps);
  for (int64_t i = 0; i < out_size; ++i) {
    double center = (i + 0.5) * scale;
    double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = static_cast<int>(in_size);
    xmax -= xmin;
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[x] = bicubic_filter((x + xmin - center + 0.5) * ss);
      total += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      if (total != 0.0) k[x] /= total;
      double scaled = k[x] * (1 << kPrecisionBits);
      w.weights[i * w.taps + x] = static_cast<int32_t>(k[x] < 0 ? -0.5 + scaled : 0.5 + scaled);
    }
    w.first[i] = xmin;
    w.count[i] = xmax;
  }
  return w;
}

inline uint8_t clip8(int32_t v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

// Output columns [x0, x1) of the horizontal pass, for input rows [y0, y1).
void resample_horizontal(const Image& in, const AxisWeights& w, int64_t x0, int64_t x1, int64_t y0, int64_t y1,
                         Image& out) {
  out.width = x1 - x0;
  out.height = y1 - y0;
  out.pixels.resize(out.width * out.height * 3);
  for (int64_t y = y0; y < y1; ++y) {
    const uint8_t* src = in.row(y);
    uint8_t* dst = out.row(y - y0);
    for (int64_t x = x0; x < x1; ++x) {
      const int32_t* k = &w.weights[x * w.taps];
      const uint8_t* p = src + w.first[x] * 3;
      int32_t r = 1 << (kPrecisionBits - 1), g = r, b = r;
      for (int t = 0, n = w.count[x]; t < n; ++t, p += 3) {
        r += p[0] * k[t];
        g += p[1] * k[t];
        b += p[2] * k[t];
      }
      uint8_t* o = dst + (x - x0) * 3;
      o[0] = clip8(r);
      o[1] = clip8(g);
      o[2] = clip8(b);
    }
  }
}

// Output rows [y0, y1) of the vertical pass; `in` holds input rows starting at row_offset.
void resample_vertical(const Image& in, int64_t row_offset, const AxisWeights& w, int64_t y0, int64_t y1,
                       Image& out) {
  out.width = in.width;
  out.height = y1 - y0;
  out.pixels.resize(out.width * out.height * 3);
  const int64_t stride = in.width * 3;
  std::vector<int32_t> acc(stride);
  for (int64_t y = y0; y < y1; ++y) {
    const int32_t* k = &w.weights[y * w.taps];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    // Row-major accumulation: same integer sums as Pillow's per-pixel loop, cache friendly.
    for (int t = 0, n = w.count[y]; t < n; ++t) {
      const uint8_t* src = in.row(w.first[y] + t - row_offset);
      const int32_t kt = k[t];
      for (int64_t i = 0; i < stride; ++i) acc[i] += src[i] * kt;
    }
    uint8_t* dst = out.row(y - y0);
    for (int64_t i = 0; i < stride; ++i) dst[i] = clip8(acc[i]);
  }
}

// The window [x0, x1) x [y0, y1) of Pillow's resize of `rgb` to out_w x out_h. Every output
// pixel depends only on its own weights, so computing a window (the centre crop) gives the same
// bytes as resizing everything and cropping afterwards, at a fraction of the work.
Image pil_resize_window(const Image& rgb, int64_t out_w, int64_t out_h, int64_t x0, int64_t x1, int64_t y0,
                        int64_t y1) {
  const bool need_h = out_w != rgb.width, need_v = out_h != rgb.height;
  if (!need_h && !need_v) {
    Image out;
    out.width = x1 - x0;
    out.height = y1 - y0;
    out.pixels.resize(out.width * out.height * 3);
    for (int64_t y = y0; y < y1; ++y)
      std::copy(rgb.row(y) + x0 * 3, rgb.row(y) + x1 * 3, out.row(y - y0));
    return out;
  }
  AxisWeights wv;
  int64_t row_first = y0, row_last = y1;  // input rows the vertical pass reads
  if (need_v) {
    wv = axis_weights(rgb.height, out_h);
    row_first = rgb.height;
    row_last = 0;
    for (int64_t y = y0; y < y1; ++y) {
      row_first = std::min<int64_t>(row_first, wv.first[y]);
      row_last = std::max<int64_t>(row_last, wv.first[y] + wv.count[y]);
    }
  }
  Image horizontal;
  const Image* stage = &rgb;
  int64_t stage_row_offset = 0;
  if (need_h) {
    resample_horizontal(rgb, axis_weights(rgb.width, out_w), x0, x1, row_first, row_last, horizontal);
    stage = &horizontal;
    stage_row_offset = row_first;
  }
  if (!need_v) return horizontal;  // already exactly rows [y0, y1)
  if (!need_h) {
    // Vertical only: restrict the columns first so the pass touches just the window.
    horizontal.width = x1 - x0;
    horizontal.height = row_last - row_first;
    horizontal.pixels.resize(horizontal.width * horizontal.height * 3);
    for (int64_t y = row_first; y < row_last; ++y)
      std::copy(rgb.row(y) + x0 * 3, rgb.row(y) + x1 * 3, horizontal.row(y - row_first));
    stage = &horizontal;
    stage_row_offset = row_first;
  }
  Image out;
  resample_vertical(*stage, stage_row_offset, wv, y0, y1, out);
  return out;
}

void check_image(const Image& img, const char* what) {
  if (img.width <= 0 || img.height <= 0 ||
      img.pixels.size() != static_cast<size_t>(img.width * img.height * 3))
    throw Error(std::string("image processor: ") + what + ": image is empty or its pixel buffer does not match " +
                std::to_string(img.width) + "x" + std::to_string(img.height) + "x3");
}

// HF center_crop: top = (h - ch) // 2 with Python floor division. When the crop is larger than the
// image HF pads to (max(ch,h), max(cw,w)) with the image at (ceil(dh/2), ceil(dw/2)) and shifts the
// box by the same pads, so in image coordinates the box stays at the floor-divided (negative)
// offset and everything outside the image is zero.
struct CropPlan {
  int64_t top, left;  // in the image; negative when padding
};
CropPlan plan_crop(int64_t h, int64_t w, int64_t ch, int64_t cw) {
  auto floor_div2 = [](int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); };
  return {floor_div2(h - ch), floor_div2(w - cw)};
}

// Crop box of size ch x cw at (top, left) in image coordinates, zero outside the image.
Image crop_with_zeros(const Image& img, int64_t top, int64_t left, int64_t ch, int64_t cw) {
  Image out;
  out.width = cw;
  out.height = ch;
  out.pixels.assign(cw * ch * 3, 0);
  int64_t x_begin = std::max<int64_t>(0, left), x_end = std::min(img.width, left + cw);
  for (int64_t y = std::max<int64_t>(0, top); y < std::min(img.height, top + ch); ++y)
    if (x_end > x_begin)
      std::copy(img.row(y) + x_begin * 3, img.row(y) + x_end * 3, out.row(y - top) + (x_begin - left) * 3);
  return out;
}

}  // namespace

Image pil_resize_bicubic(const Image& rgb, int64_t out_w, int64_t out_h) {
  check_image(rgb, "resize");
  if (out_w <= 0 || out_h <= 0)
    throw Error("image processor: resize: target size " + std::to_string(out_w) + "x" + std::to_string(out_h) +
                " is empty");
  return pil_resize_window(rgb, out_w, out_h, 0, out_w, 0, out_h);
}

// ---- the stages ---------------------------------------------------------------------------------

namespace {
// HF get_resize_output_image_size(default_to_square=False): int(S * long / short) truncates.
std::pair<int64_t, int64_t> shortest_edge_size(int64_t h, int64_t w, int64_t s) {  // (H', W')
  if (w <= h) return {s * h / w, s};
  return {s, s * w / h};
}
}  // namespace

Image ImageProcessor::resize(const Image& rgb) const {
  check_image(rgb, "resize");
  auto [h, w] = shortest_edge_size(rgb.height, rgb.width, cfg_.shortest_edge);
  return pil_resize_window(rgb, w, h, 0, w, 0, h);
}

Image ImageProcessor::center_crop(const Image& rgb) const {
  check_image(rgb, "center_crop");
  CropPlan p = plan_crop(rgb.height, rgb.width, cfg_.crop_height, cfg_.crop_width);
  return crop_with_zeros(rgb, p.top, p.left, cfg_.crop_height, cfg_.crop_width);
}

torch::Tensor ImageProcessor::to_pixel_values(const Image& rgb) const {
  check_image(rgb, "to_pixel_values");
  // Each u8 maps to one float32, so a 256-entry table per channel is exact and cheap. The table
  // entries are computed with the float32 operations HF/numpy perform, in the same order.
  std::array<std::array<float, 256>, 3> lut;
  for (int c = 0; c < 3; ++c) {
    const float mean = static_cast<float>(cfg_.image_mean[c]), sd = static_cast<float>(cfg_.image_std[c]);
    for (int v = 0; v < 256; ++v) {
      float x = cfg_.do_rescale ? static_cast<float>(static_cast<double>(v) * cfg_.rescale_factor)
                                : static_cast<float>(v);
      lut[c][v] = cfg_.do_normalize ? (x - mean) / sd : x;  // a true division, never a reciprocal
    }
  }
  torch::Tensor out = torch::empty({3, rgb.height, rgb.width}, torch::kFloat32);  // (3, H, W)
  float* dst = out.data_ptr<float>();
  const int64_t plane = rgb.height * rgb.width;
  const uint8_t* src = rgb.pixels.data();
  for (int64_t i = 0; i < plane; ++i) {
    dst[i] = lut[0][src[3 * i]];
    dst[plane + i] = lut[1][src[3 * i + 1]];
    dst[2 * plane + i] = lut[2][src[3 * i + 2]];
  }
  return out;
}

Image ImageProcessor::resize_and_crop(const Image& rgb) const {
  check_image(rgb, "preprocess");
  if (!cfg_.do_resize) return cfg_.do_center_crop ? center_crop(rgb) : rgb;
  auto [h, w] = shortest_edge_size(rgb.height, rgb.width, cfg_.shortest_edge);
  if (!cfg_.do_center_crop) return pil_resize_window(rgb, w, h, 0, w, 0, h);
  // Resize only the part of the resized image that the crop keeps.
  CropPlan p = plan_crop(h, w, cfg_.crop_height, cfg_.crop_width);
  int64_t y0 = std::max<int64_t>(0, p.top), y1 = std::min(h, p.top + cfg_.crop_height);
  int64_t x0 = std::max<int64_t>(0, p.left), x1 = std::min(w, p.left + cfg_.crop_width);
  Image window = pil_resize_window(rgb, w, h, x0, x1, y0, y1);
  if (y0 == p.top && x0 == p.left && y1 - y0 == cfg_.crop_height && x1 - x0 == cfg_.crop_width) return window;
  return crop_with_zeros(window, p.top - y0, p.left - x0, cfg_.crop_height, cfg_.crop_width);
}

torch::Tensor ImageProcessor::preprocess(const Image& img) const { return to_pixel_values(resize_and_crop(img)); }

torch::Tensor ImageProcessor::preprocess_batch(const std::vector<Image>& images) const {
  std::vector<torch::Tensor> items;
  items.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    items.push_back(preprocess(images[i]));
    if (i > 0 && items[i].sizes() != items[0].sizes())
      throw Error("image processor: batch image " + std::to_string(i) + " preprocesses to " +
                  shape_string(items[i].sizes().vec()) + " but image 0 to " + shape_string(items[0].sizes().vec()) +
                  " (enable do_center_crop to batch images of different sizes)");
  }
  if (items.empty()) return torch::empty({0, 3, cfg_.crop_height, cfg_.crop_width}, torch::kFloat32);
  return torch::stack(items);  // (N, 3, ch, cw)
}

}  // namespace clipcap
