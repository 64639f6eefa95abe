#include "data/dataset_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>

#include "common/strings.h"

namespace clipcap {

LengthDistribution length_distribution(std::vector<int64_t> v) {
  LengthDistribution d;
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  auto rank = [&](double q) { return v[static_cast<size_t>(std::max(0.0, std::ceil(q * v.size()) - 1))]; };
  d.count = static_cast<int64_t>(v.size());
  d.min = v.front();
  d.max = v.back();
  d.p50 = rank(0.5);
  d.p90 = rank(0.9);
  d.p99 = rank(0.99);
  double sum = 0;
  for (int64_t x : v) sum += static_cast<double>(x);
  d.mean = sum / static_cast<double>(v.size());
  return d;
}

namespace {
int64_t word_count(const std::string& s) {
  std::istringstream in(s);
  std::string w;
  int64_t n = 0;
  while (in >> w) ++n;
  return n;
}
}  // namespace

DatasetStats compute_dataset_stats(const EmbeddingDataset& ds, const Tokenizer* tokenizer) {
  DatasetStats s;
  s.dir = ds.dir();
  s.images = ds.size();
  s.dim = ds.dim();
  s.store_dtype = store_dtype_name(ds.stored_dtype());
  s.embedding_kind = ds.meta().value(nlohmann::json::json_pointer("/embedding/kind"), std::string("?"));
  s.clip_name = ds.meta().value(nlohmann::json::json_pointer("/clip/name"), std::string("?"));
  s.length_unit = tokenizer ? "tokens (" + tokenizer->kind() + ")" : "words";
  for (const char* split : {"train", "val", "test"}) s.images_per_split[split] = s.captions_per_split[split] = 0;
  std::vector<int64_t> lengths;
  s.min_captions_per_image = ds.entries().empty() ? 0 : INT64_MAX;
  for (const auto& e : ds.entries()) {
    const auto n = static_cast<int64_t>(e.captions.size());
    s.images_per_split[e.split] += 1;
    s.captions_per_split[e.split] += n;
    s.captions += n;
    s.min_captions_per_image = std::min(s.min_captions_per_image, n);
    s.max_captions_per_image = std::max(s.max_captions_per_image, n);
    for (const auto& c : e.captions)
      lengths.push_back(tokenizer ? static_cast<int64_t>(tokenizer->encode(c).size()) : word_count(c));
  }
  s.lengths = length_distribution(std::move(lengths));
  for (const auto& err : ds.errors()) (err.image.empty() ? s.row_errors : s.image_errors) += 1;
  return s;
}

std::string format_dataset_stats(const DatasetStats& s) {
  std::ostringstream o;
  o << "dataset     " << s.dir << "\n";
  o << "embeddings  " << s.images << " x " << s.dim << " " << s.store_dtype << ", " << s.embedding_kind << " of "
    << s.clip_name << "\n";
  o << "images      " << s.images;
  for (const char* split : {"train", "val", "test"}) o << "  " << split << " " << s.images_per_split.at(split);
  o << "\n";
  o << "captions    " << s.captions;
  for (const char* split : {"train", "val", "test"}) o << "  " << split << " " << s.captions_per_split.at(split);
  o << "\n";
  o << "per image   min " << s.min_captions_per_image << "  mean "
    << format_number(s.images ? double(s.captions) / double(s.images) : 0.0, "%.2f") << "  max " << s.max_captions_per_image
    << "\n";
  o << "length      " << s.length_unit << ": min " << s.lengths.min << "  p50 " << s.lengths.p50 << "  p90 "
    << s.lengths.p90 << "  p99 " << s.lengths.p99 << "  max " << s.lengths.max << "  mean " << format_number(s.lengths.mean, "%.2f") << "\n";
  o << "lost        " << s.image_errors << " images, " << s.row_errors << " caption rows (errors.jsonl)\n";
  return o.str();
}

}  // namespace clipcap
