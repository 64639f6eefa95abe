#include "data/embedding_dataset.h"

#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_util.h"
#include "model/weights/safetensors.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace clipcap {

torch::ScalarType parse_store_dtype(const std::string& name) {
  if (name == "f32" || name == "fp32" || name == "float32") return torch::kFloat32;
  if (name == "f16" || name == "fp16" || name == "float16") return torch::kFloat16;
  throw Error("unknown store dtype '" + name + "' (expected f32 or f16)");
}

std::string store_dtype_name(torch::ScalarType t) { return t == torch::kFloat16 ? "f16" : "f32"; }

json DatasetEntry::to_json() const {
  json j = {{"image", image}, {"captions", captions}, {"split", split}};
  if (plan_index >= 0) j["plan_index"] = plan_index;
  return j;
}

json DatasetError::to_json() const {
  json j = json::object();
  if (!image.empty()) j["image"] = image;
  if (!row.empty()) j["row"] = row;
  j["reason"] = reason;
  if (plan_index >= 0) j["plan_index"] = plan_index;
  return j;
}

DatasetError DatasetError::from_json(const json& j) {
  DatasetError e;
  e.image = j.value("image", "");
  e.row = j.value("row", "");
  e.reason = j.value("reason", "");
  e.plan_index = j.value("plan_index", int64_t{-1});
  return e;
}

// ---- writer -------------------------------------------------------------------------------------

struct EmbeddingDatasetWriter::Files {
  AtomicFile embeddings, index, errors;
  explicit Files(const std::string& dir)
      : embeddings(dir + "/embeddings.safetensors"), index(dir + "/index.jsonl"), errors(dir + "/errors.jsonl") {}
};

EmbeddingDatasetWriter::EmbeddingDatasetWriter(std::string dir, int64_t rows, int64_t dim, torch::ScalarType store_dtype)
    : dir_(std::move(dir)), rows_(rows), dim_(dim), dtype_(store_dtype) {
  if (rows <= 0 || dim <= 0)
    throw Error(dir_ + ": a dataset needs at least one image and a positive embedding size (got " +
                std::to_string(rows) + " x " + std::to_string(dim) + ")");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw Error(dir_ + ": cannot create directory (" + ec.message() + ")");
  files_ = std::make_unique<Files>(dir_);
  // The same header save_safetensors writes, so the file is an ordinary safetensors file.
  const uint64_t bytes = static_cast<uint64_t>(rows) * dim * (dtype_ == torch::kFloat16 ? 2 : 4);
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "pt"}};
  header["image_embeds"] = {{"dtype", dtype_ == torch::kFloat16 ? "F16" : "F32"},
                            {"shape", {rows, dim}},
                            {"data_offsets", {uint64_t{0}, bytes}}};
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<uint64_t>(h.size()) >> (8 * i));
  files_->embeddings.write(len, 8);
  files_->embeddings.write(h.data(), h.size());
}

EmbeddingDatasetWriter::~EmbeddingDatasetWriter() = default;

void EmbeddingDatasetWriter::append(const std::vector<DatasetEntry>& entries, const torch::Tensor& embeds) {
  const auto n = static_cast<int64_t>(entries.size());
  if (embeds.dim() != 2 || embeds.size(0) != n || embeds.size(1) != dim_)
    throw Error(dir_ + ": embeddings block " + shape_string(embeds.sizes().vec()) + " does not match " +
                std::to_string(n) + " entries of dim " + std::to_string(dim_));
  if (written_ + n > rows_)
    throw Error(dir_ + ": more than the " + std::to_string(rows_) + " rows announced");
  torch::Tensor block = embeds.detach().to(torch::kCPU, dtype_).contiguous();
  files_->embeddings.write(block.data_ptr(), static_cast<size_t>(block.numel()) * block.element_size());
  for (const auto& e : entries) {
    files_->index.stream() << e.to_json().dump() << "\n";
    captions_ += static_cast<int64_t>(e.captions.size());
    splits_[e.split] += 1;
  }
  written_ += n;
}

void EmbeddingDatasetWriter::add_error(const DatasetError& error) {
  files_->errors.stream() << error.to_json().dump() << "\n";
  (error.image.empty() ? row_errors_ : image_errors_) += 1;
}

void EmbeddingDatasetWriter::finish(json meta) {
  if (written_ != rows_)
    throw Error(dir_ + ": " + std::to_string(written_) + " rows written, " + std::to_string(rows_) + " announced");
  meta["format"] = kEmbeddingDatasetFormat;
  meta["format_version"] = kEmbeddingDatasetFormatVersion;
  meta["embedding"]["dim"] = dim_;
  meta["embedding"]["store_dtype"] = store_dtype_name(dtype_);
  json& counts = meta["counts"];
  counts["images"] = rows_;
  counts["captions"] = captions_;
  for (const char* s : {"train", "val", "test"}) counts[s] = splits_.count(s) ? splits_[s] : 0;
  counts["image_errors"] = image_errors_;
  counts["row_errors"] = row_errors_;
  if (!counts.contains("recovered_rows")) counts["recovered_rows"] = 0;
  files_->embeddings.commit();
  files_->index.commit();
  files_->errors.commit();
  write_json_atomic(dir_ + "/meta.json", meta);
}

// ---- reader -------------------------------------------------------------------------------------

EmbeddingDataset::EmbeddingDataset(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) throw Error(dir_ + ": no such dataset directory");
  const std::string meta_path = dir_ + "/meta.json";
  if (!fs::exists(meta_path, ec)) {
    std::string hint = fs::exists(dir_ + ".partial", ec) ? " (an interrupted build left " + dir_ +
                                                               ".partial: rerun the same clipcap-data command)"
                                                         : "";
    throw Error(dir_ + ": not a finished clipcap embedding dataset (no meta.json)" + hint);
  }
  meta_ = read_json(meta_path);
  if (json_value<std::string>(meta_, "format", "", meta_path) != kEmbeddingDatasetFormat)
    throw Error(meta_path + ": not a clipcap embedding dataset (format is not '" + kEmbeddingDatasetFormat + "')");
  int version = json_require<int>(meta_, "format_version", meta_path);
  if (version > kEmbeddingDatasetFormatVersion)
    throw Error(meta_path + ": format_version " + std::to_string(version) + " is newer than this clipcap reads (" +
                std::to_string(kEmbeddingDatasetFormatVersion) + "): upgrade clipcap");

  const std::string index_path = dir_ + "/index.jsonl";
  std::ifstream in(index_path);
  if (!in) throw Error(index_path + ": cannot open");
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    const std::string where = index_path + ":" + std::to_string(n);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception&) {  // parse_error, or out_of_range for a huge number
      throw Error(where + ": invalid JSON");
    }
    DatasetEntry e;
    e.image = json_require<std::string>(j, "image", where);
    e.captions = json_require<std::vector<std::string>>(j, "captions", where);
    e.split = json_require<std::string>(j, "split", where);
    e.plan_index = json_value<int64_t>(j, "plan_index", -1, where);
    if (e.split != "train" && e.split != "val" && e.split != "test")
      throw Error(where + ": split '" + e.split + "' (expected train, val or test)");
    entries_.push_back(std::move(e));
  }

  const std::string emb_path = dir_ + "/embeddings.safetensors";
  SafetensorsFile f(emb_path);
  if (!f.contains("image_embeds")) throw Error(emb_path + ": no tensor 'image_embeds'");
  auto shape = f.shape("image_embeds");
  if (shape.size() != 2 || shape[0] != size())
    throw Error(emb_path + ": 'image_embeds' has shape " + shape_string(shape) + ", index.jsonl has " +
                std::to_string(size()) + " images");
  dim_ = shape[1];
  stored_dtype_ = f.entry("image_embeds").dtype == "F16" ? torch::kFloat16 : torch::kFloat32;
}

torch::Tensor EmbeddingDataset::embeddings(torch::ScalarType dtype) const {
  SafetensorsFile f(dir_ + "/embeddings.safetensors");
  return f.load("image_embeds", dtype);
}

std::vector<int64_t> EmbeddingDataset::rows(const std::string& split) const {
  std::vector<int64_t> out;
  for (size_t i = 0; i < entries_.size(); ++i)
    if (entries_[i].split == split) out.push_back(static_cast<int64_t>(i));
  return out;
}

std::map<std::string, int64_t> EmbeddingDataset::split_counts() const {
  std::map<std::string, int64_t> out{{"train", 0}, {"val", 0}, {"test", 0}};
  for (const auto& e : entries_) out[e.split] += 1;
  return out;
}

std::vector<DatasetError> EmbeddingDataset::errors() const {
  std::vector<DatasetError> out;
  std::ifstream in(dir_ + "/errors.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      out.push_back(DatasetError::from_json(json::parse(line)));
    } catch (const json::exception&) {
      throw Error(dir_ + "/errors.jsonl: invalid line '" + line + "'");
    }
  }
  return out;
}

}  // namespace clipcap
