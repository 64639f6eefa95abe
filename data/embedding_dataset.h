// The embedding dataset directory that clipcap-data writes and training / evaluation read.
//
//   clipcap::EmbeddingDataset ds("data/flickr30k-vitb32");
//   torch::Tensor x = ds.embeddings();              // (N, D) float32, row i = ds.entries()[i]
//   for (int64_t i : ds.rows("train")) ds.entries()[i].captions ...
//
// Layout (format_version 1):
//   embeddings.safetensors  tensor "image_embeds" (N, D), F32 or F16 (--store-dtype), one row per image
//   index.jsonl             line i: {"image": path relative to the images root, "captions": [...],
//                           "split": "train"|"val"|"test"}; shard outputs add "plan_index"
//   errors.jsonl            one line per lost item: {"image": ..., "reason": ...} for images that
//                           could not be read, {"row": "results.csv:19", "reason": ...} for rows
//   meta.json               written LAST: its presence marks a finished dataset. Keys: format,
//                           format_version, tool, tool_version, clip {dir, name, config_sha256
//                           (SHA-256 of config.json's bytes), hidden_size, projection_dim},
//                           embedding {kind: pooler_output|image_embeds, dim, store_dtype,
//                           compute_dtype}, preprocessing (preprocessor_config, resolved), source
//                           {format, captions, images, lowercase}, split {seed, train, val}, counts
//                           {images, captions, train, val, test, image_errors, row_errors,
//                           recovered_rows}, plan {images, sha256}, shard {index, count} (shards only).
#pragma once

#include <torch/types.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clipcap {

inline constexpr const char* kEmbeddingDatasetFormat = "clipcap-embedding-dataset";
inline constexpr int kEmbeddingDatasetFormatVersion = 1;

struct DatasetEntry {
  std::string image;
  std::vector<std::string> captions;
  std::string split;         // train | val | test
  int64_t plan_index = -1;   // position in the full (unsharded) plan; written only by shards
  nlohmann::json to_json() const;
};

// One lost item: an image (image set) or a caption-file row (row set).
struct DatasetError {
  std::string image, row, reason;
  int64_t plan_index = -1;  // images only, written only by shards (merge orders by it)
  nlohmann::json to_json() const;
  static DatasetError from_json(const nlohmann::json& j);
};

// Writes a dataset into `dir` (created if missing; the caller stages it and renames it into place).
// Memory stays at one appended block: embeddings are streamed to disk.
class EmbeddingDatasetWriter {
 public:
  EmbeddingDatasetWriter(std::string dir, int64_t rows, int64_t dim, torch::ScalarType store_dtype);
  ~EmbeddingDatasetWriter();
  void append(const std::vector<DatasetEntry>& entries, const torch::Tensor& embeds);  // embeds (n, D)
  void add_error(const DatasetError& error);
  // Fills meta's format, format_version, embedding.dim/store_dtype and counts, then commits
  // embeddings, index and errors, and writes meta.json last. Error if fewer rows than promised.
  void finish(nlohmann::json meta);

 private:
  struct Files;
  std::string dir_;
  int64_t rows_, dim_, written_ = 0;
  torch::ScalarType dtype_;
  std::unique_ptr<Files> files_;
  int64_t captions_ = 0, image_errors_ = 0, row_errors_ = 0;
  std::map<std::string, int64_t> splits_;
};

class EmbeddingDataset {
 public:
  // Checks meta.json (format, version), index.jsonl and the embeddings' shape; clipcap::Error naming
  // the file otherwise (a directory without meta.json is an unfinished or foreign one).
  explicit EmbeddingDataset(std::string dir);

  const std::string& dir() const { return dir_; }
  const nlohmann::json& meta() const { return meta_; }
  const std::vector<DatasetEntry>& entries() const { return entries_; }
  int64_t size() const { return static_cast<int64_t>(entries_.size()); }
  int64_t dim() const { return dim_; }
  torch::ScalarType stored_dtype() const { return stored_dtype_; }

  torch::Tensor embeddings(torch::ScalarType dtype = torch::kFloat32) const;  // (N, D)
  std::vector<int64_t> rows(const std::string& split) const;                 // row numbers, in order
  std::map<std::string, int64_t> split_counts() const;
  std::vector<DatasetError> errors() const;  // errors.jsonl (empty when absent)

 private:
  std::string dir_;
  nlohmann::json meta_;
  std::vector<DatasetEntry> entries_;
  int64_t dim_ = 0;
  torch::ScalarType stored_dtype_ = torch::kFloat32;
};

// "f32" | "f16" -> dtype; Error otherwise.
torch::ScalarType parse_store_dtype(const std::string& name);
std::string store_dtype_name(torch::ScalarType t);

}  // namespace clipcap
