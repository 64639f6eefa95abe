// HF CLIPImageProcessor preprocessing, bit-exact against the golden fixtures: Pillow bicubic
// resize, centre crop (with the zero-padding branch), rescale + normalise, and config parsing.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_util.h"
#include "image/image_io.h"
#include "model/image_processor.h"
#include "tests/test_support.h"

namespace clipcap {
namespace {

using test::expected;
using test::expected_tensor;
using test::fixture;

torch::Tensor as_tensor(const Image& img) {  // (H, W, 3) uint8
  return torch::from_blob(const_cast<uint8_t*>(img.pixels.data()), {img.height, img.width, 3}, torch::kUInt8).clone();
}

const nlohmann::json& manifest() {
  static nlohmann::json m = read_json(fixture("manifest.json"));
  return m;
}

ImageProcessor fixture_processor() { return ImageProcessor::from_dir(fixture("tiny-clip")); }

bool has_expected(const std::string& name) { return expected("clip.safetensors").count(name) > 0; }

// The processor of the alt_pad / alt_crop fixtures: same config, another shortest edge.
ImageProcessor alt_processor(const std::string& variant) {
  ImageProcessorConfig cfg = fixture_processor().config();
  const auto& alt = manifest().value("preprocess_alt", nlohmann::json::object());
  if (alt.contains(variant))
    cfg.shortest_edge = alt[variant]["shortest_edge"].get<int64_t>();
  else
    cfg.shortest_edge = cfg.crop_height + (variant == "alt_pad" ? -7 : 7);
  return ImageProcessor(cfg);
}

// ---- golden fixtures ----------------------------------------------------------------------------

TEST(ImageProcessorGolden, ResizedCroppedAndPixelValuesAreBitExact) {
  ImageProcessor proc = fixture_processor();
  ASSERT_FALSE(manifest()["images"].empty());
  for (const auto& entry : manifest()["images"]) {
    const std::string name = entry["name"], prefix = "image." + name + ".";
    SCOPED_TRACE(name);
    Image img = read_image(fixture(entry["file"]));
    Image resized = proc.resize(img);
    if (has_expected(prefix + "resized_u8")) {
      EXPECT_TENSOR_EQ(as_tensor(resized), expected_tensor("clip.safetensors", prefix + "resized_u8"));
    }
    Image cropped = proc.center_crop(resized);
    EXPECT_TENSOR_EQ(as_tensor(cropped), expected_tensor("clip.safetensors", prefix + "cropped_u8"));
    // The fused path (resample only what the crop keeps) must give the same bytes.
    EXPECT_TENSOR_EQ(as_tensor(proc.resize_and_crop(img)), expected_tensor("clip.safetensors", prefix + "cropped_u8"));
    EXPECT_TENSOR_EQ(proc.preprocess(img).unsqueeze(0), expected_tensor("clip.safetensors", prefix + "pixel_values"));
  }
}

TEST(ImageProcessorGolden, PaddingAndCroppingVariantsAreBitExact) {
  for (const std::string variant : {"alt_pad", "alt_crop"}) {
    ImageProcessor proc = alt_processor(variant);
    for (const auto& entry : manifest()["images"]) {
      const std::string name = entry["name"], prefix = "image." + name + "." + variant + ".";
      SCOPED_TRACE(name + " " + variant);
      Image img = read_image(fixture(entry["file"]));
      if (has_expected(prefix + "resized_u8")) {
        EXPECT_TENSOR_EQ(as_tensor(proc.resize(img)), expected_tensor("clip.safetensors", prefix + "resized_u8"));
      }
      EXPECT_TENSOR_EQ(as_tensor(proc.center_crop(proc.resize(img))),
                       expected_tensor("clip.safetensors", prefix + "cropped_u8"));
      EXPECT_TENSOR_EQ(as_tensor(proc.resize_and_crop(img)), expected_tensor("clip.safetensors", prefix + "cropped_u8"));
      EXPECT_TENSOR_EQ(proc.preprocess(img).unsqueeze(0), expected_tensor("clip.safetensors", prefix + "pixel_values"));
    }
  }
}

TEST(ImageProcessorGolden, BatchEqualsTheVisionBatch) {
  ImageProcessor proc = fixture_processor();
  std::vector<Image> images;
  for (const auto& entry : manifest()["images"]) images.push_back(read_image(fixture(entry["file"])));
  EXPECT_TENSOR_EQ(proc.preprocess_batch(images), expected_tensor("clip.safetensors", "vision.pixel_values"));
}

// ---- Pillow bicubic on its own (expected bytes from Pillow 9.4 Image.resize(BICUBIC)) -----------

// The 5x4 source: sharp 0/255 edges so overshoot clamping is exercised.
Image resize_source() {
  Image img;
  img.width = 5;
  img.height = 4;
  img.pixels.resize(5 * 4 * 3);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x)
      for (int c = 0; c < 3; ++c)
        img.row(y)[x * 3 + c] = (x * 7 + y * 13 + c * 5) % 4 == 0 ? 255 : (x * 37 + y * 11 + c * 71) % 256;
  return img;
}

const std::vector<uint8_t> kResized2x3 = {
    122, 158, 190, 140, 199, 180, 112, 128, 207, 153, 228, 166, 72, 172, 226, 193, 221, 109,
};
const std::vector<uint8_t> kResized9x7 = {
    255, 54, 138, 203, 129, 149, 37, 255, 172, 23, 221, 215, 73, 136, 255, 86, 152, 255, 124, 185, 236, 222, 209, 93,
    255, 221, 15, 177, 63, 138, 163, 114, 151, 117, 204, 176, 86, 209, 211, 71, 182, 246, 85, 178, 255, 124, 186, 245,
    197, 211, 94, 226, 225, 11, 11, 78, 146, 91, 89, 159, 240, 116, 185, 190, 187, 207, 79, 253, 228, 91, 222, 255,
    126, 191, 246, 153, 217, 101, 166, 232, 20, 0, 76, 209, 47, 85, 204, 156, 108, 193, 189, 162, 214, 180, 217, 230,
    144, 228, 176, 121, 227, 135, 146, 234, 152, 162, 236, 154, 20, 98, 254, 24, 108, 239, 43, 127, 207, 148, 143, 227,
    254, 165, 239, 197, 219, 95, 137, 255, 21, 158, 249, 178, 173, 241, 254, 27, 206, 198, 35, 186, 213, 53, 142, 236,
    100, 145, 247, 158, 171, 246, 201, 204, 108, 218, 233, 16, 192, 247, 92, 175, 251, 135, 31, 255, 161, 43, 232, 194,
    67, 150, 253, 74, 147, 255, 95, 179, 250, 198, 196, 123, 255, 217, 23, 211, 245, 38, 175, 255, 55,
};
const std::vector<uint8_t> kResized5x6 = {
    255, 70, 141, 23, 255, 178, 73, 138, 255, 110, 181, 253, 255, 218, 33, 140, 76, 141, 151, 190, 184, 69, 202, 241,
    116, 184, 255, 209, 224, 27, 0, 82, 167, 244, 112, 191, 108, 251, 227, 123, 202, 227, 155, 232, 73, 17, 82, 247,
    84, 126, 197, 243, 178, 236, 125, 250, 47, 167, 239, 241, 28, 179, 219, 53, 136, 230, 187, 168, 244, 198, 237, 11,
    176, 249, 168, 34, 255, 170, 71, 142, 255, 97, 179, 250, 255, 212, 31, 182, 255, 55,
};
const std::vector<uint8_t> kResized3x4 = {
    162, 150, 155, 61, 181, 248, 197, 201, 127, 116, 95, 166, 136, 214, 234, 140, 217, 134, 35, 105, 238, 188, 180, 174,
    157, 251, 151, 43, 205, 215, 134, 172, 206, 217, 241, 45,
};
const std::vector<uint8_t> kResized5x4 = {
    255, 71, 142, 37, 255, 179, 74, 145, 255, 111, 182, 253, 255, 219, 34, 11, 82, 153, 255, 119, 190, 85, 255, 227,
    122, 193, 255, 159, 230, 45, 22, 93, 255, 59, 130, 201, 255, 167, 238, 133, 255, 19, 170, 241, 255, 33, 255, 175,
    70, 141, 255, 107, 178, 249, 255, 215, 30, 181, 255, 67,
};

TEST(PilResizeBicubic, MatchesPillowDownUpAndSingleAxis) {
  Image src = resize_source();
  struct Case {
    int64_t w, h;
    const std::vector<uint8_t>& want;
  };
  for (const Case& c : {Case{2, 3, kResized2x3}, Case{9, 7, kResized9x7}, Case{5, 6, kResized5x6},
                        Case{3, 4, kResized3x4}, Case{5, 4, kResized5x4}}) {
    SCOPED_TRACE(std::to_string(c.w) + "x" + std::to_string(c.h));
    Image got = pil_resize_bicubic(src, c.w, c.h);
    EXPECT_EQ(got.width, c.w);
    EXPECT_EQ(got.height, c.h);
    EXPECT_EQ(got.pixels, c.want);
  }
}

TEST(PilResizeBicubic, RejectsEmptyInputAndTargets) {
  EXPECT_THROW(pil_resize_bicubic(Image{}, 3, 3), Error);
  EXPECT_THROW(pil_resize_bicubic(resize_source(), 0, 3), Error);
}

// ---- centre crop --------------------------------------------------------------------------------

TEST(ImageProcessorCrop, PadsWithZerosUsingPythonFloorDivision) {
  ImageProcessorConfig cfg;
  cfg.crop_height = 7;  // 4 rows -> top = (4 - 7) // 2 = -2: image row 0 lands on output row 2
  cfg.crop_width = 3;   // 5 cols -> left = 1
  Image src = resize_source();
  Image out = ImageProcessor(cfg).center_crop(src);
  ASSERT_EQ(out.height, 7);
  ASSERT_EQ(out.width, 3);
  for (int64_t y = 0; y < 7; ++y)
    for (int64_t x = 0; x < 3; ++x)
      for (int c = 0; c < 3; ++c) {
        int64_t sy = y - 2;
        uint8_t want = (sy >= 0 && sy < 4) ? src.row(sy)[(x + 1) * 3 + c] : 0;
        EXPECT_EQ(out.row(y)[x * 3 + c], want) << "at " << y << "," << x << "," << c;
      }
}

// ---- configuration ------------------------------------------------------------------------------

TEST(ImageProcessorConfig, FixtureConfigResolvesToTheManifestValues) {
  const auto& want = manifest()["configs"]["preprocessor_resolved"];
  ImageProcessorConfig cfg = fixture_processor().config();
  EXPECT_EQ(cfg.shortest_edge, want["size"]["shortest_edge"].get<int64_t>());
  EXPECT_EQ(cfg.crop_height, want["crop_size"]["height"].get<int64_t>());
  EXPECT_EQ(cfg.crop_width, want["crop_size"]["width"].get<int64_t>());
  EXPECT_EQ(cfg.rescale_factor, want["rescale_factor"].get<double>());
  EXPECT_EQ(cfg.image_mean, want["image_mean"].get<std::vector<double>>());
  EXPECT_EQ(cfg.image_std, want["image_std"].get<std::vector<double>>());
  EXPECT_EQ(cfg.do_resize, want["do_resize"].get<bool>());
  EXPECT_EQ(cfg.do_center_crop, want["do_center_crop"].get<bool>());
  EXPECT_EQ(cfg.do_rescale, want["do_rescale"].get<bool>());
  EXPECT_EQ(cfg.do_normalize, want["do_normalize"].get<bool>());
}

TEST(ImageProcessorConfig, IntFormLikeOpenaiClipResolvesLikeTheDictForm) {
  // openai/clip-vit-base-patch32's file: int sizes, old feature-extractor type, no rescale keys.
  auto old_form = nlohmann::json::parse(R"({
    "crop_size": 224, "do_center_crop": true, "do_normalize": true, "do_resize": true,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3, "size": 224})");
  auto dict_form = nlohmann::json::parse(R"({
    "crop_size": {"height": 224, "width": 224}, "size": {"shortest_edge": 224},
    "do_convert_rgb": true, "do_rescale": true, "rescale_factor": 0.00392156862745098,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "CLIPImageProcessor", "resample": 3})");
  ImageProcessorConfig a = ImageProcessorConfig::from_json(old_form, "old.json");
  ImageProcessorConfig b = ImageProcessorConfig::from_json(dict_form, "new.json");
  EXPECT_EQ(a.to_json(), b.to_json());
  EXPECT_EQ(a.shortest_edge, 224);
  EXPECT_EQ(a.crop_height, 224);
  EXPECT_EQ(a.crop_width, 224);
  EXPECT_EQ(a.rescale_factor, 1.0 / 255.0);
  EXPECT_TRUE(a.do_rescale && a.do_convert_rgb);
  // And to_json reads back to itself.
  EXPECT_EQ(ImageProcessorConfig::from_json(a.to_json(), "x").to_json(), a.to_json());
}

TEST(ImageProcessorConfig, BadValuesNameTheFileAndTheField) {
  auto expect_error = [](const char* text, const std::string& what) {
    try {
      ImageProcessorConfig::from_json(nlohmann::json::parse(text), "dir/preprocessor_config.json");
      ADD_FAILURE() << "no error for " << text;
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find("dir/preprocessor_config.json"), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "wrong exception type: " << e.what();
    }
  };
  expect_error(R"({"resample": 2})", "resample");
  expect_error(R"({"size": {"height": 224, "width": 224}})", "size");
  expect_error(R"({"size": "big"})", "size");
  expect_error(R"({"crop_size": {"height": 224}})", "width");
  expect_error(R"({"image_mean": [0.5, 0.5]})", "image_mean");
  expect_error(R"({"do_resize": "yes"})", "do_resize");
  expect_error(R"({"size": 0})", "shortest_edge");
}

TEST(ImageProcessorConfig, MissingFileIsAnErrorNamingIt) {
  try {
    ImageProcessor::from_dir("/nonexistent-dir");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/preprocessor_config.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace clipcap
