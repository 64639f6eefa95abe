#include "eval/evaluate.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <numeric>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_util.h"
#include "common/paths.h"
#include "common/progress.h"
#include "common/stopwatch.h"
#include "backend/caption_backend.h"
#include "image/caption_render.h"
#include "data/embedding_dataset.h"
#include "image/image_io.h"
#include "eval/clip_score.h"
#include "eval/html_report.h"
#include "eval/metrics_summary.h"
#include "eval/prediction_records.h"
#include "eval/training_log.h"

namespace clipcap {
namespace fs = std::filesystem;

namespace {

std::string images_root(const EmbeddingDataset& ds, const EvaluateOptions& opts) {
  if (!opts.images_dir.empty()) return opts.images_dir;
  const nlohmann::json& meta = ds.meta();
  if (meta.contains("source") && meta["source"].is_object() && meta["source"].contains("images") &&
      meta["source"]["images"].is_string())
    return meta["source"]["images"].get<std::string>();
  return "";
}

std::optional<Image> try_read(const std::string& path) {
  try {
    return read_image(path);
  } catch (const Error&) {
    return std::nullopt;
  }
}

// The backend's encode() of images, prepared and encoded as one batch.
std::vector<ImagePayload> encode_images(CaptionBackend& backend, const std::vector<Image>& images) {
  std::vector<ImagePayload> prepared;
  prepared.reserve(images.size());
  for (const Image& img : images) prepared.push_back(backend.prepare(img));
  return backend.encode(std::move(prepared));
}

struct EmbeddingChoice {
  bool stored = false;
  std::string reason;
};

EmbeddingChoice choose_embeddings(CaptionBackend& backend, const EmbeddingDataset& ds, const std::vector<int64_t>& rows,
                                  const std::string& root, const std::string& mode) {
  if (mode == "model") return {false, "--embeddings model"};
  const std::optional<EmbeddingSpace> space = backend.embedding_space();
  if (!space) {
    if (mode == "stored") throw Error(ds.dir() + ": --embeddings stored: this caption backend reads images, not embeddings");
    return {false, "the caption backend reads images"};
  }
  const nlohmann::json& meta = ds.meta();
  const std::string kind = meta.contains("embedding") ? json_value<std::string>(meta["embedding"], "kind", "", "meta.json") : "";
  const std::string want_kind = space->kind;
  const int64_t want_dim = space->dim;
  if (kind != want_kind || ds.dim() != want_dim) {
    const std::string why = "dataset embeddings are " + (kind.empty() ? std::string("?") : kind) + " [" +
                            std::to_string(ds.dim()) + "], the model reads " + want_kind + " [" +
                            std::to_string(want_dim) + "]";
    if (mode == "stored") throw Error(ds.dir() + "/meta.json: --embeddings stored: " + why);
    return {false, why};
  }
  if (mode == "stored") return {true, "--embeddings stored"};
  // Spot check: the model's CLIP on up to 2 split images against their stored rows.
  std::vector<Image> images;
  std::vector<int64_t> checked;
  for (int64_t row : rows) {
    if (images.size() == 2) break;
    if (auto img = try_read((fs::path(root) / ds.entries()[static_cast<size_t>(row)].image).string())) {
      images.push_back(std::move(*img));
      checked.push_back(row);
    }
  }
  if (images.empty()) return {true, "kind and dim match; no image readable for a spot check"};
  std::vector<torch::Tensor> rows_of_mine;
  for (auto& p : encode_images(backend, images)) rows_of_mine.push_back(p.tensor);
  const torch::Tensor mine = torch::stack(rows_of_mine);
  const torch::Tensor stored = ds.embeddings().index_select(0, torch::tensor(checked, torch::kInt64));
  for (int64_t i = 0; i < mine.size(0); ++i) {
    const double scale = stored[i].abs().max().item<double>();
    const double diff = (mine[i] - stored[i]).abs().max().item<double>();
    if (!(diff <= 0.05 * scale))
      return {false, "stored embedding of " + ds.entries()[static_cast<size_t>(checked[static_cast<size_t>(i)])].image +
                         " differs from the model's CLIP (max diff " + std::to_string(diff) + "): another CLIP"};
  }
  return {true, "kind, dim and a spot check of " + std::to_string(images.size()) + " images match"};
}

// The report is written in full under OUT.tmp and then renamed to OUT (a previous report moved
// aside and removed), so a full disk, a crash or Ctrl-C leaves the previous report or none, never
// thumbnails without a report. OUT may hold only a previous report: anything else would be lost.
class ReportStaging {
 public:
  explicit ReportStaging(const std::string& out) : out_(without_trailing_slashes(out)), stage_(out_ + ".tmp") {
    std::error_code ec;
    if (fs::exists(out_, ec)) {
      if (!fs::is_directory(out_, ec)) throw Error(out_ + ": --out exists and is not a directory");
      const bool empty = fs::is_empty(out_, ec);
      const bool report = fs::exists(fs::path(out_) / "metrics.json", ec) || fs::exists(fs::path(out_) / "report.html", ec);
      if (!empty && !report)
        throw Error(out_ + ": --out holds files that are not a clipcap-eval report (no metrics.json): choose a new "
                    "or empty directory (a report there is replaced as a whole)");
    }
    fs::remove_all(stage_, ec);  // a killed run's
    try {
      fs::create_directories(stage_);
    } catch (const fs::filesystem_error& e) {
      throw Error(out_ + ": cannot create the report directory (" + e.code().message() + ")");
    }
  }
  ~ReportStaging() {
    if (committed_) return;
    std::error_code ec;
    fs::remove_all(stage_, ec);
  }
  ReportStaging(const ReportStaging&) = delete;
  ReportStaging& operator=(const ReportStaging&) = delete;

  fs::path dir() const { return stage_; }
  void commit() {
    replace_directory(stage_, out_);
    committed_ = true;
  }

 private:
  std::string out_, stage_;
  bool committed_ = false;
};

Image thumbnail(const Image& img, int longest) {
  const int64_t side = std::max(img.width, img.height);
  if (side <= longest) return img;
  const double f = static_cast<double>(longest) / static_cast<double>(side);
  const int w = std::max(1, static_cast<int>(std::lround(static_cast<double>(img.width) * f)));
  const int h = std::max(1, static_cast<int>(std::lround(static_cast<double>(img.height) * f)));
  cv::Mat src(static_cast<int>(img.height), static_cast<int>(img.width), CV_8UC3, const_cast<uint8_t*>(img.pixels.data()));
  cv::Mat dst;
  cv::resize(src, dst, cv::Size(w, h), 0, 0, cv::INTER_AREA);
  Image out;
  out.width = w;
  out.height = h;
  out.pixels.assign(dst.data, dst.data + dst.total() * 3);
  return out;
}

}  // namespace

nlohmann::json evaluate(CaptionBackend& backend, const EvaluateOptions& opts) {
  std::ostream& log = opts.log ? *opts.log : std::cerr;
  const auto t_start = Clock::now();
  if (opts.embeddings != "auto" && opts.embeddings != "stored" && opts.embeddings != "model")
    throw Error("--embeddings: '" + opts.embeddings + "' is not auto, stored or model");
  if (opts.batch_size < 1) throw Error("--batch-size: must be at least 1");

  const EmbeddingDataset ds(opts.data_dir);
  const std::vector<int64_t> rows = ds.rows(opts.split);
  if (rows.empty()) throw Error(opts.data_dir + ": split '" + opts.split + "' has no images");
  const std::string root = images_root(ds, opts);
  const EmbeddingChoice choice = choose_embeddings(backend, ds, rows, root, opts.embeddings);
  log << "clipcap-eval: " << rows.size() << " " << opts.split << " images; embeddings: "
      << (choice.stored ? "stored" : "model's CLIP") << " (" << choice.reason << ")\n";
  ReportStaging staging(opts.out_dir);
  const fs::path out_dir = staging.dir();

  // ---- caption ----
  const auto t_caption = Clock::now();
  const torch::Tensor stored = choice.stored ? ds.embeddings() : torch::Tensor();
  std::vector<PredictionRecord> records;
  struct {
    int64_t prompt_tokens = 0, completion_tokens = 0;
  } usage;  // remote backends: what the endpoint counted
  ProgressOptions popts;
  popts.unit = "img";
  Progress progress("caption", static_cast<int64_t>(rows.size()), popts);
  for (size_t start = 0; start < rows.size(); start += static_cast<size_t>(opts.batch_size)) {
    const size_t end = std::min(rows.size(), start + static_cast<size_t>(opts.batch_size));
    const std::vector<int64_t> batch(rows.begin() + static_cast<std::ptrdiff_t>(start),
                                     rows.begin() + static_cast<std::ptrdiff_t>(end));
    std::vector<ImagePayload> encoded;
    if (choice.stored) {
      for (int64_t row : batch) encoded.push_back({stored[row], {}});  // (D) float32
    } else {
      std::vector<Image> images;
      for (int64_t row : batch) images.push_back(read_image((fs::path(root) / ds.entries()[static_cast<size_t>(row)].image).string()));
      encoded = encode_images(backend, images);
    }
    std::vector<std::vector<const ImagePayload*>> requests;
    for (const ImagePayload& p : encoded) requests.push_back({&p});
    const std::vector<Caption> captions = backend.caption(requests, opts.decoding);
    for (size_t i = 0; i < batch.size(); ++i) {
      const DatasetEntry& e = ds.entries()[static_cast<size_t>(batch[i])];
      // Metrics over the images that happened to succeed would not be comparable: stop.
      if (!captions.at(i).error.empty()) throw Error(e.image + ": no caption: " + captions[i].error);
      records.push_back({e.image, captions[i].text, e.captions, rerank_json(captions[i].rerank)});
      usage.prompt_tokens += captions[i].prompt_tokens;
      usage.completion_tokens += captions[i].tokens;
    }
    progress.advance(static_cast<int64_t>(batch.size()));
  }
  progress.finish();
  const double caption_s = seconds_since(t_caption);

  // ---- score ----
  const auto t_score = Clock::now();
  for (const auto& r : records)
    if (r.references.empty()) throw Error(opts.data_dir + "/index.jsonl: image '" + r.image + "' has no captions");
  const std::vector<ScoredItem> items = scored_items(records);
  const CaptionScores scores = score_captions(items);
  std::unique_ptr<ClipScoreResult> clip;
  if (!opts.clip_dir.empty()) {
    ClipScorer scorer(opts.clip_dir);
    std::vector<torch::Tensor> parts;
    for (size_t start = 0; start < rows.size(); start += 64) {
      std::vector<Image> images;
      for (size_t i = start; i < std::min(rows.size(), start + 64); ++i)
        images.push_back(read_image((fs::path(root) / records[i].image).string()));
      parts.push_back(scorer.embed_images(images));
    }
    std::vector<std::string> predictions;
    std::vector<std::vector<std::string>> references;
    for (const auto& r : records) predictions.push_back(r.prediction), references.push_back(r.references);
    clip = std::make_unique<ClipScoreResult>(scorer.score(torch::cat(parts), predictions, references));
  }
  const double score_s = seconds_since(t_score);

  nlohmann::json metrics;
  metrics["metrics"] = metric_values(scores, clip.get());
  metrics["counts"] = metric_counts(items);
  metrics["model"] = backend.describe();
  if (backend.reads_prompts())
    metrics["usage"] = {{"requests", records.size()},
                        {"prompt_tokens", usage.prompt_tokens},
                        {"completion_tokens", usage.completion_tokens},
                        {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
  metrics["data"] = {{"dir", opts.data_dir}, {"split", opts.split}, {"images", root}};
  metrics["embeddings"] = {{"source", choice.stored ? "stored" : "model"}, {"reason", choice.reason}};
  metrics["decoding"] = opts.decoding.to_json();
  metrics["runtime"] = {{"dtype", opts.runtime.dtype}, {"device", opts.runtime.device}, {"threads", opts.runtime.threads}};
  if (clip)
    metrics["clip_score"] = {{"clip", opts.clip_dir}, {"w", ClipScoreOptions{}.w}, {"prompt", ClipScoreOptions{}.prompt}};
  metrics["tool"] = "clipcap-eval";
  metrics["tool_version"] = CLIPCAP_VERSION;

  write_predictions_jsonl((out_dir / "predictions.jsonl").string(), records, scores, clip.get());

  // ---- report ----
  std::optional<std::string> run_dir = !opts.run_dir.empty()  ? std::optional(opts.run_dir)
                                       : opts.model_dir.empty() ? std::nullopt  // a remote backend
                                                                : find_run_dir(opts.model_dir);
  ReportInput report;
  report.title = "clipcap-eval: " + metrics["model"].value("name", base_name(opts.model_dir)) + " on " + base_name(opts.data_dir) + " (" + opts.split + ")";
  if (run_dir) report.training = read_training_log(*run_dir);
  std::vector<size_t> by_cider(records.size());
  std::iota(by_cider.begin(), by_cider.end(), 0);
  std::stable_sort(by_cider.begin(), by_cider.end(),
                   [&](size_t a, size_t b) { return scores.items[a]["CIDEr-D"] > scores.items[b]["CIDEr-D"]; });
  const size_t k = std::min(records.size(), static_cast<size_t>(std::max(0, opts.best_worst)));
  const std::vector<size_t> best(by_cider.begin(), by_cider.begin() + static_cast<std::ptrdiff_t>(k));
  const std::vector<size_t> worst(by_cider.rbegin(), by_cider.rbegin() + static_cast<std::ptrdiff_t>(k));
  std::vector<size_t> grid(std::min(records.size(), static_cast<size_t>(std::max(0, opts.report_images))));
  std::iota(grid.begin(), grid.end(), 0);

  const fs::path image_dir = out_dir / "images";
  fs::create_directories(image_dir);
  std::map<size_t, std::string> thumbs;  // record index -> src ("" when unreadable)
  auto src_of = [&](size_t i) -> std::string {
    if (auto it = thumbs.find(i); it != thumbs.end()) return it->second;
    std::string src;
    if (auto img = try_read((fs::path(root) / records[i].image).string())) {
      char name[32];
      std::snprintf(name, sizeof name, "%05zu.jpg", i);
      write_jpeg((image_dir / name).string(), thumbnail(*img, opts.thumbnail_size), 85);
      src = std::string("images/") + name;
    }
    return thumbs[i] = src;
  };
  auto item = [&](size_t i) {
    const ItemScores& s = scores.items[i];
    nlohmann::json sc = {{"CIDEr-D", s["CIDEr-D"]}, {"BLEU-4", s["BLEU-4"]}, {"ROUGE-L", s["ROUGE-L"]}};
    if (clip) sc["CLIPScore"] = clip->per_image_clip_score[i];
    return ReportItem{records[i].image, src_of(i), records[i].prediction, records[i].references, sc};
  };
  for (size_t i : best) report.best.push_back(item(i));
  for (size_t i : worst) report.worst.push_back(item(i));
  for (size_t i : grid) report.grid.push_back(item(i));

  // ---- rendered images (upstream's evaluate.py) ----
  if (opts.render) {
    const nlohmann::json& m = metrics["model"];
    const std::string name = m.value("name", base_name(opts.model_dir)) + "_" + m.value("size", "S");
    const fs::path dir = out_dir / name;
    for (const auto& r : records) {
      const Image img = read_image((fs::path(root) / r.image).string());
      fs::path rel = fs::path(r.image).lexically_normal();
      if (rel.has_root_path() || (!rel.empty() && *rel.begin() == "..")) rel = rel.filename();  // stay inside dir
      fs::path out = dir / rel;
      out.replace_extension(".jpg");
      fs::create_directories(out.parent_path());
      write_jpeg(out.string(), render_caption(img, r.prediction), 90);
    }
    metrics["render_dir"] = (fs::path(opts.out_dir) / name).string();
  }

  metrics["time_s"] = {{"captioning", caption_s}, {"scoring", score_s}, {"total", seconds_since(t_start)}};
  nlohmann::json settings = metrics;
  settings.erase("metrics");
  settings.erase("counts");
  report.metrics = metrics;
  report.settings = settings;
  write_file_atomic((out_dir / "report.html").string(), render_report_html(report));
  write_json_atomic((out_dir / "metrics.json").string(), metrics);
  staging.commit();
  return metrics;
}

}  // namespace clipcap
