// What `clipcap-data stats DIR` prints: images and captions per split, captions per image, and
// the caption length distribution (in tokens with a tokenizer, else in whitespace words).
//
//   clipcap::EmbeddingDataset ds(dir);
//   auto tok = clipcap::load_tokenizer("gpt2");                     // optional
//   std::cout << clipcap::format_dataset_stats(clipcap::compute_dataset_stats(ds, tok.get()));
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "data/embedding_dataset.h"
#include "model/tokenizers/tokenizer.h"

namespace clipcap {

struct LengthDistribution {
  int64_t count = 0, min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;  // nearest-rank percentiles
  double mean = 0;
};

struct DatasetStats {
  std::string dir;
  std::map<std::string, int64_t> images_per_split, captions_per_split;  // train/val/test
  int64_t images = 0, captions = 0, min_captions_per_image = 0, max_captions_per_image = 0;
  int64_t image_errors = 0, row_errors = 0;
  int64_t dim = 0;
  std::string store_dtype, embedding_kind, clip_name;
  std::string length_unit;  // "tokens (<tokenizer kind>)" | "words"
  LengthDistribution lengths;
};

DatasetStats compute_dataset_stats(const EmbeddingDataset& ds, const Tokenizer* tokenizer = nullptr);
std::string format_dataset_stats(const DatasetStats& s);
LengthDistribution length_distribution(std::vector<int64_t> lengths);

}  // namespace clipcap
