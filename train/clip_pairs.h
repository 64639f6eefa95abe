// The image/caption pairs `clipcap-train clip` trains on: every image of a split decoded once and
// resized + centre-cropped by the ImageProcessor the trained CLIP will ship with, its captions
// tokenised, and the batches built from them (with the optional augmentations).
//
//   clipcap::LoadReport report;
//   clipcap::PairSet train = clipcap::load_pairs(items, images_root, processor, /*workers=*/2, report);
//   clipcap::tokenise(train, tokenizer, classes);
//   torch::Tensor px = clipcap::pixel_batch(processor, train.images, rows, augmentations);  // (n, 3, S, S)
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset_sources.h"
#include "image/image_io.h"
#include "model/image_processor.h"
#include "model/tokenizers/clip_tokenizer.h"
#include "train/image_augment.h"

namespace clipcap {

// One split's images, decoded and resized + cropped to image_size, with their captions.
struct PairSet {
  std::vector<Image> images;                        // S x S RGB, as the processor crops them
  std::vector<std::vector<std::string>> captions;   // per image, at least one
  std::vector<std::vector<std::vector<int64_t>>> ids;  // per image, per caption: bos ... eos
  std::vector<std::vector<int32_t>> text_class;     // per image, per caption: equal ids, equal class
  int64_t size() const { return static_cast<int64_t>(images.size()); }
};

struct LoadReport {
  int64_t skipped = 0;
  std::string first_error;
};

// The items' images, decoded on `workers` threads; unreadable ones are skipped and counted.
PairSet load_pairs(const std::vector<const SourceItem*>& items, const std::string& root,
                   const ImageProcessor& processor, int workers, LoadReport& report);

// Tokenises every caption; identical id sequences share a class (positives of each other).
void tokenise(PairSet& set, const ClipBpeTokenizer& tok, std::map<std::vector<int64_t>, int32_t>& classes);

// (n, 3, S, S): the processor's own rescale + normalise of each image of `rows`, image i augmented
// by augmentations[i] when they are given (train/image_augment.h).
torch::Tensor pixel_batch(const ImageProcessor& processor, const std::vector<Image>& images,
                          const std::vector<int64_t>& rows, const std::vector<ImageAugmentation>& augmentations = {});

// (n, T) ids padded with pad_id to the longest row. No attention mask is needed: the text tower is
// causal and pools at the first eos, so the padding after it never reaches the pooled position.
torch::Tensor id_batch(const std::vector<const std::vector<int64_t>*>& rows, int64_t pad_id);

}  // namespace clipcap
