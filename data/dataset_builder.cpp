#include "data/dataset_builder.h"

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "common/atomic_file.h"
#include "common/bounded_queue.h"
#include "common/error.h"
#include "common/json_util.h"
#include "common/paths.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "data/embedding_dataset.h"
#include "model/clip.h"
#include "model/image_processor.h"
#include "model/kernels/inference_matmul.h"
#include "model/weights/safetensors.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace clipcap {

namespace {

// read_image's messages start with the path; errors.jsonl names the image separately.
std::string image_reason(const std::string& path, const std::string& what) {
  const std::string prefix = path + ": ";
  return first_line(what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what);
}

std::string image_path(const std::string& root, const std::string& relative) {
  return root.empty() ? relative : (fs::path(root) / relative).string();
}

// ---- the plan -----------------------------------------------------------------------------------

struct Plan {
  CaptionSource source;       // items with their splits decided
  std::vector<int64_t> work;  // plan positions this shard embeds, ascending
  std::string sha256;         // of the items, splits and rejected rows
};

Plan make_plan(const BuildOptions& opts) {
  Plan plan;
  plan.source = read_caption_source(opts.captions, opts.source);
  const auto& problems = plan.source.problems;
  if (opts.strict && !problems.empty())
    throw Error(problems[0].row + ": " + problems[0].reason + " (--strict stops at the first bad row)");
  if (plan.source.items.empty())
    throw Error(opts.captions + ": no usable caption rows, so no images to embed" +
                (problems.empty() ? std::string()
                                  : " (" + std::to_string(problems.size()) + " rows rejected; first: " +
                                        problems[0].row + ": " + problems[0].reason + ")"));
  assign_splits(plan.source.items, opts.split);
  Sha256 h;
  for (const auto& item : plan.source.items)
    h.update(json{{"image", item.image}, {"captions", item.captions}, {"split", item.split}}.dump() + "\n");
  for (const auto& p : problems) h.update(p.row + "\t" + p.reason + "\n");
  plan.sha256 = h.hex();
  for (size_t i = 0; i < plan.source.items.size(); ++i)
    if (opts.shard.owns(i)) plan.work.push_back(static_cast<int64_t>(i));
  return plan;
}

int64_t weights_bytes(const std::string& clip_dir) {
  std::error_code ec;
  for (const char* name : {"model.safetensors", "pytorch_model.bin"}) {
    auto size = fs::file_size(fs::path(clip_dir) / name, ec);
    if (!ec) return static_cast<int64_t>(size);
  }
  return -1;
}

// ---- the work directory ------------------------------------------------------------------------

// A finished dataset at out is replaced only with overwrite; anything else there is never touched.
void check_output_target(const std::string& out, bool overwrite) {
  std::error_code ec;
  if (!fs::exists(out, ec)) return;
  if (fs::is_directory(out, ec) && fs::is_empty(out, ec)) return;
  if (fs::exists(fs::path(out) / "meta.json", ec)) {
    if (overwrite) return;
    throw Error(out + ": a finished dataset is already there (pass --overwrite to replace it, or choose another --out)");
  }
  throw Error(out + ": exists and is not a clipcap dataset; refusing to replace it (choose another --out)");
}

void prepare_work_dir(const std::string& work, const json& args, bool restart) {
  std::error_code ec;
  const std::string args_path = work + "/args.json";
  if (fs::exists(work, ec)) {
    bool keep = false;
    if (!restart && fs::exists(args_path, ec)) {
      json old = read_json(args_path);
      if (old != args) {
        std::string keys;
        for (auto it = args.begin(); it != args.end(); ++it)
          if (!old.contains(it.key()) || old[it.key()] != it.value()) keys += (keys.empty() ? "" : ", ") + it.key();
        throw Error(work + ": an unfinished build with other arguments is here (" +
                    (keys.empty() ? std::string("format") : keys) +
                    " differ): rerun it with the same arguments to resume it, pass --restart to discard it, "
                    "or choose another --out");
      }
      keep = true;
    }
    if (!keep) fs::remove_all(work, ec);
  }
  fs::create_directories(work, ec);
  if (ec) throw Error(work + ": cannot create the work directory (" + ec.message() + ")");
  if (!fs::exists(args_path, ec)) write_json_atomic(args_path, args);
  // Leftovers of a killed run: temporary files of chunks being written, a half-assembled dataset.
  for (const auto& entry : fs::directory_iterator(work, ec))
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) fs::remove(entry.path(), ec);
  fs::remove_all(fs::path(work) / "final", ec);
}

// ---- chunks -------------------------------------------------------------------------------------

struct ChunkRecord {
  std::vector<int64_t> rows;                            // plan positions embedded
  std::vector<std::pair<int64_t, std::string>> errors;  // plan position, reason
};

std::string chunk_path(const std::string& work, int64_t k) {
  char name[64];
  std::snprintf(name, sizeof name, "/chunk_%06lld.safetensors", static_cast<long long>(k));
  return work + name;
}

void write_chunk(const std::string& path, int64_t k, const ChunkRecord& rec, const torch::Tensor& embeds) {
  json errors = json::array();
  for (const auto& [pos, reason] : rec.errors) errors.push_back({pos, reason});
  std::map<std::string, std::string> meta{
      {"format", "pt"}, {"chunk", std::to_string(k)}, {"rows", json(rec.rows).dump()}, {"errors", errors.dump()}};
  NamedTensors tensors;
  if (!rec.rows.empty()) tensors.emplace_back("image_embeds", embeds);
  save_safetensors(path, tensors, meta);
}

// A chunk from an earlier run, checked against what it must cover; nullopt when unusable.
std::optional<ChunkRecord> read_chunk(const std::string& path, const std::vector<int64_t>& expect, int64_t dim) {
  try {
    SafetensorsFile f(path);
    const auto& meta = f.metadata();
    if (!meta.count("rows") || !meta.count("errors")) return std::nullopt;
    ChunkRecord rec;
    rec.rows = json::parse(meta.at("rows")).get<std::vector<int64_t>>();
    for (const auto& e : json::parse(meta.at("errors"))) rec.errors.emplace_back(e.at(0).get<int64_t>(), e.at(1).get<std::string>());
    std::vector<int64_t> covered = rec.rows;
    for (const auto& e : rec.errors) covered.push_back(e.first);
    std::sort(covered.begin(), covered.end());
    if (covered != expect) return std::nullopt;
    if (!rec.rows.empty()) {
      if (!f.contains("image_embeds") || f.entry("image_embeds").dtype != "F32" ||
          f.shape("image_embeds") != std::vector<int64_t>{static_cast<int64_t>(rec.rows.size()), dim})
        return std::nullopt;
    }
    return rec;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// ---- the pipeline -------------------------------------------------------------------------------

struct PreparedBatch {
  int64_t chunk = 0;
  ChunkRecord record;
  torch::Tensor pixels;  // (n, 3, H, W) for record.rows; undefined when no image could be read
};

// Decoders run at most a few batches ahead of the forwards.
using BatchQueue = BoundedQueue<PreparedBatch>;

// The decode/preprocess threads; stopped and joined on destruction (also when the forward throws).
class Decoders {
 public:
  Decoders(int n, BatchQueue& queue, std::function<std::optional<PreparedBatch>()> next) : queue_(queue) {
    for (int i = 0; i < n; ++i)
      threads_.emplace_back([this, next] {
        try {
          while (!abort_.load()) {
            std::optional<PreparedBatch> b = next();
            if (!b || !queue_.push(std::move(*b))) break;
          }
        } catch (...) {
          std::lock_guard<std::mutex> lock(mu_);
          if (!failure_) failure_ = std::current_exception();
          abort_ = true;
        }
        queue_.producer_done();
      });
  }
  ~Decoders() { stop(); }
  void stop() {
    abort_ = true;
    queue_.close();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  void rethrow() {
    std::lock_guard<std::mutex> lock(mu_);
    if (failure_) std::rethrow_exception(failure_);
  }

 private:
  BatchQueue& queue_;
  std::vector<std::thread> threads_;
  std::atomic<bool> abort_{false};
  std::mutex mu_;
  std::exception_ptr failure_;
};

int abort_after_chunks() {  // tests: simulate kill -9 after N chunk files
  const char* v = std::getenv("CLIPCAP_TEST_ABORT_AFTER_CHUNKS");
  return v && *v ? std::atoi(v) : 0;
}

}  // namespace

BuildResult build_embedding_dataset(const BuildOptions& opts) {
  BuildResult result;
  if (opts.batch_size < 1) throw Error("--batch-size must be >= 1");
  if (opts.workers < 0) throw Error("--workers must be >= 0 (0 = all cores)");
  if (opts.shard.count < 1 || opts.shard.index < 0 || opts.shard.index >= opts.shard.count)
    throw Error("--shard: expected i/N with 0 <= i < N");
  if (opts.embedding != "pooler_output" && opts.embedding != "image_embeds")
    throw Error("--embedding '" + opts.embedding + "': expected pooler_output or image_embeds");
  if (opts.out.empty()) throw Error("--out is required");
  {  // before a work directory exists: a mistyped --images would otherwise fail every image
    std::error_code ec;
    if (!opts.images.empty() && !std::filesystem::is_directory(opts.images, ec))
      throw Error(opts.images + ": the --images directory does not exist" +
                  (std::filesystem::exists(opts.images, ec) ? std::string(" (it is a file)") : std::string()));
  }
  const torch::ScalarType store_dtype = parse_store_dtype(opts.store_dtype);
  const std::string out = without_trailing_slashes(opts.out);
  const std::string work = out + ".partial";
  result.out = out;
  result.work_dir = work;
  check_output_target(out, opts.overwrite);

  // Model first: a wrong --clip should fail before any caption file is parsed.
  const std::string config_path = opts.clip + "/config.json";
  const std::string config_sha = sha256_hex(read_file(config_path));
  ImageProcessor processor = ImageProcessor::from_dir(opts.clip);
  CLIPModel clip = load_clip(opts.clip, {opts.runtime.float_dtype(), /*with_text=*/false});
  const torch::Device device = opts.runtime.torch_device();
  clip->to(device);
  clip->eval();
  freeze_weights_for_inference(*clip);  // it only embeds
  const bool projected = opts.embedding == "image_embeds";
  if (projected && clip->visual_projection.is_empty())
    throw Error(opts.clip + ": no visual_projection (a bare vision model): --embedding image_embeds needs a CLIPModel");
  const int64_t dim = projected ? clip->config.projection_dim : clip->config.vision.hidden_size;

  Plan plan = make_plan(opts);
  const auto& items = plan.source.items;
  const bool sharded = opts.shard.sharded();
  result.planned = static_cast<int64_t>(items.size());
  result.to_embed = static_cast<int64_t>(plan.work.size());
  result.row_errors = static_cast<int64_t>(plan.source.problems.size());
  result.recovered_rows = static_cast<int64_t>(plan.source.recovered.size());
  if (plan.work.empty())
    throw Error("--shard " + opts.shard.text() + ": no images (" +
                std::to_string(items.size()) + " in the plan)");

  json clip_info = {{"dir", opts.clip},
                    {"name", fs::path(without_trailing_slashes(opts.clip)).filename().string()},
                    {"config_sha256", config_sha},
                    {"hidden_size", clip->config.vision.hidden_size},
                    {"projection_dim", clip->config.projection_dim}};
  json args = {{"captions", opts.captions},
               {"images", opts.images},
               {"format", opts.source.format},
               {"plan_sha256", plan.sha256},
               {"split", {{"seed", opts.split.seed}, {"train", opts.split.train}, {"val", opts.split.val}}},
               {"lowercase", opts.source.lowercase},
               {"clip_dir", opts.clip},
               {"clip_config_sha256", config_sha},
               {"clip_weights_bytes", weights_bytes(opts.clip)},
               {"preprocessing", processor.config().to_json()},
               {"embedding", opts.embedding},
               {"store_dtype", store_dtype_name(store_dtype)},
               {"compute_dtype", opts.runtime.dtype},
               {"device", opts.runtime.device},
               {"batch_size", opts.batch_size},
               {"shard", opts.shard.text()},
               {"max_pixels", opts.limits.max_pixels}};
  prepare_work_dir(work, args, opts.restart);

  // Which chunks are done already.
  const int64_t B = opts.batch_size, W = static_cast<int64_t>(plan.work.size());
  const int64_t n_chunks = (W + B - 1) / B;
  auto chunk_positions = [&](int64_t k) {
    return std::vector<int64_t>(plan.work.begin() + k * B, plan.work.begin() + std::min(W, (k + 1) * B));
  };
  std::vector<std::optional<ChunkRecord>> records(n_chunks);
  std::vector<int64_t> pending;
  for (int64_t k = 0; k < n_chunks; ++k) {
    const std::string path = chunk_path(work, k);
    std::error_code ec;
    if (fs::exists(path, ec)) {
      records[k] = read_chunk(path, chunk_positions(k), dim);
      if (!records[k]) fs::remove(path, ec);  // unusable (cannot happen with atomic writes): redo it
    }
    if (records[k])
      result.resumed += static_cast<int64_t>(records[k]->rows.size() + records[k]->errors.size());
    else
      pending.push_back(k);
  }

  // Embed the pending chunks.
  ProgressOptions popts = opts.progress;
  if (popts.unit == ProgressOptions{}.unit) popts.unit = "img";
  Progress progress("embed", W, popts);
  progress.skip(result.resumed);
  bool stopped = false;
  if (!pending.empty() && !(opts.stop && opts.stop->load())) {
    const int n_workers = opts.workers > 0 ? opts.workers : available_cores();
    BatchQueue queue(static_cast<size_t>(std::min(4, std::max(2, n_workers))), n_workers);
    std::atomic<size_t> next_pending{0};
    auto prepare = [&]() -> std::optional<PreparedBatch> {
      const size_t p = next_pending.fetch_add(1);
      if (p >= pending.size()) return std::nullopt;
      PreparedBatch b;
      b.chunk = pending[p];
      std::vector<torch::Tensor> pixels;
      for (int64_t pos : chunk_positions(b.chunk)) {
        const std::string path = image_path(opts.images, items[pos].image);
        try {
          pixels.push_back(processor.preprocess(read_image(path, opts.limits)));
          b.record.rows.push_back(pos);
        } catch (const std::bad_alloc&) {
          b.record.errors.emplace_back(pos, "out of memory while decoding");
        } catch (const std::exception& e) {
          b.record.errors.emplace_back(pos, image_reason(path, e.what()));
        }
      }
      if (!pixels.empty()) b.pixels = torch::stack(pixels);
      return b;
    };
    Decoders decoders(n_workers, queue, prepare);
    const int abort_after = abort_after_chunks();
    int written = 0;
    torch::NoGradGuard no_grad;
    while (std::optional<PreparedBatch> b = queue.pop()) {
      ChunkRecord& rec = b->record;
      if (opts.strict && !rec.errors.empty())
        throw Error(image_path(opts.images, items[rec.errors[0].first].image) + ": " + rec.errors[0].second +
                    " (--strict stops at the first bad image)");
      torch::Tensor embeds;
      if (!rec.rows.empty()) {
        const torch::Tensor pooled = clip->vision_model->pooled(b->pixels.to(device));  // (n, Dv)
        embeds = projected ? clip->image_embeds(pooled) : pooled;                      // (n, D)
        embeds = embeds.to(torch::kCPU, torch::kFloat32).contiguous();
      }
      write_chunk(chunk_path(work, b->chunk), b->chunk, rec, embeds);
      progress.advance(static_cast<int64_t>(rec.rows.size() + rec.errors.size()));
      records[b->chunk] = std::move(rec);
      if (abort_after > 0 && ++written >= abort_after) std::_Exit(137);
      if (opts.stop && opts.stop->load()) {
        stopped = true;
        break;
      }
    }
    decoders.stop();
    decoders.rethrow();
    if (opts.stop && opts.stop->load()) stopped = true;
  } else if (!pending.empty()) {
    stopped = true;
  }
  progress.finish();
  result.seconds = progress.elapsed_seconds();
  result.images_per_second = progress.rate();
  for (const auto& r : records) {
    if (r) result.done += static_cast<int64_t>(r->rows.size() + r->errors.size());
    stopped = stopped || !r;
  }
  if (stopped) return result;

  // Assemble: rows in plan order, errors after the rejected caption rows.
  int64_t total = 0;
  for (const auto& r : records) total += static_cast<int64_t>(r->rows.size());
  std::vector<DatasetError> image_errors;
  for (const auto& r : records)
    for (const auto& [pos, reason] : r->errors) image_errors.push_back({items[pos].image, "", reason, sharded ? pos : -1});
  result.image_errors = static_cast<int64_t>(image_errors.size());
  if (total == 0) {
    std::string list;
    for (const auto& e : image_errors) list += e.to_json().dump() + "\n";
    write_file_atomic(work + "/errors.jsonl", list);
    throw Error("no image could be embedded: all " + std::to_string(W) + " failed (first: " +
                image_path(opts.images, image_errors[0].image) + ": " + image_errors[0].reason + "); every reason is in " +
                work + "/errors.jsonl");
  }
  const std::string staging = work + "/final";
  EmbeddingDatasetWriter writer(staging, total, dim, store_dtype);
  for (const auto& p : plan.source.problems) writer.add_error({"", p.row, p.reason, -1});
  for (const auto& e : image_errors) writer.add_error(e);
  for (int64_t k = 0; k < n_chunks; ++k) {
    const ChunkRecord& r = *records[k];
    if (r.rows.empty()) continue;
    torch::Tensor embeds = SafetensorsFile(chunk_path(work, k)).load("image_embeds", torch::kFloat32);
    std::vector<DatasetEntry> entries;
    for (int64_t pos : r.rows) {
      entries.push_back({items[pos].image, items[pos].captions, items[pos].split, sharded ? pos : -1});
      result.captions += static_cast<int64_t>(items[pos].captions.size());
      result.splits[items[pos].split] += 1;
    }
    writer.append(entries, embeds);
  }
  result.embedded = total;
  json meta = {
      {"tool", "clipcap-data"},
      {"tool_version", CLIPCAP_VERSION},
      {"clip", clip_info},
      {"embedding", {{"kind", opts.embedding}, {"compute_dtype", opts.runtime.dtype}}},
      {"preprocessing", processor.config().to_json()},
      {"source",
       {{"format", opts.source.format}, {"captions", opts.captions}, {"images", opts.images},
        {"lowercase", opts.source.lowercase}}},
      {"split", {{"seed", opts.split.seed}, {"train", opts.split.train}, {"val", opts.split.val}}},
      {"counts", {{"recovered_rows", result.recovered_rows}}},
      {"plan", {{"images", result.planned}, {"sha256", plan.sha256}}},
  };
  if (sharded) meta["shard"] = {{"index", opts.shard.index}, {"count", opts.shard.count}};
  writer.finish(meta);
  replace_directory(staging, out);
  std::error_code ec;
  fs::remove_all(work, ec);
  result.finished = true;
  return result;
}

// ---- merge --------------------------------------------------------------------------------------

MergeResult merge_embedding_datasets(const std::string& out_arg, const std::vector<std::string>& shard_dirs,
                                     bool overwrite) {
  if (shard_dirs.empty()) throw Error("merge: no shard directories given");
  const std::string out = without_trailing_slashes(out_arg);
  check_output_target(out, overwrite);
  std::vector<EmbeddingDataset> shards;
  for (const auto& d : shard_dirs) shards.emplace_back(d);

  auto without = [](json j, std::initializer_list<const char*> keys) {
    for (const char* k : keys) j.erase(k);
    return j;
  };
  const json& first = shards[0].meta();
  const std::string first_meta = shards[0].dir() + "/meta.json";
  if (!first.contains("shard"))
    throw Error(first_meta + ": not a shard (built without --shard), nothing to merge");
  const int count = json_require<int>(first["shard"], "count", first_meta);
  std::vector<int> owner(count, -1);
  const json common = without(first, {"counts", "shard"});
  for (size_t s = 0; s < shards.size(); ++s) {
    const json& m = shards[s].meta();
    const std::string where = shards[s].dir() + "/meta.json";
    if (!m.contains("shard")) throw Error(where + ": not a shard (built without --shard), nothing to merge");
    const int index = json_require<int>(m["shard"], "index", where);
    if (json_require<int>(m["shard"], "count", where) != count || index < 0 || index >= count)
      throw Error(where + ": shard " + std::to_string(index) + "/" + m["shard"]["count"].dump() + " does not fit the " +
                  std::to_string(count) + " shards of " + first_meta);
    if (owner[index] >= 0)
      throw Error(where + ": shard " + std::to_string(index) + "/" + std::to_string(count) + " is also " +
                  shards[owner[index]].dir());
    owner[index] = static_cast<int>(s);
    json mine = without(m, {"counts", "shard"});
    if (mine != common) {
      std::string keys;
      for (auto it = common.begin(); it != common.end(); ++it)
        if (!mine.contains(it.key()) || mine[it.key()] != it.value()) keys += (keys.empty() ? "" : ", ") + it.key();
      throw Error(where + ": not from the same build as " + first_meta + " (" + (keys.empty() ? "extra keys" : keys) +
                  " differ)");
    }
  }
  for (int i = 0; i < count; ++i)
    if (owner[i] < 0) throw Error("merge: shard " + std::to_string(i) + "/" + std::to_string(count) + " is missing");

  struct Row {
    int64_t plan_index;
    size_t shard;
    int64_t row;
  };
  std::vector<Row> rows;
  for (size_t s = 0; s < shards.size(); ++s)
    for (int64_t r = 0; r < shards[s].size(); ++r) {
      const int64_t p = shards[s].entries()[r].plan_index;
      if (p < 0) throw Error(shards[s].dir() + "/index.jsonl: line " + std::to_string(r + 1) + " has no plan_index");
      rows.push_back({p, s, r});
    }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.plan_index < b.plan_index; });
  for (size_t i = 1; i < rows.size(); ++i)
    if (rows[i].plan_index == rows[i - 1].plan_index)
      throw Error("merge: image '" + shards[rows[i].shard].entries()[rows[i].row].image + "' is in both " +
                  shards[rows[i - 1].shard].dir() + " and " + shards[rows[i].shard].dir());

  const torch::ScalarType dtype = shards[0].stored_dtype();
  std::vector<torch::Tensor> embeds;
  for (const auto& s : shards) embeds.push_back(s.embeddings(dtype));
  const std::string staging = out + ".merging";
  std::error_code ec;
  fs::remove_all(staging, ec);
  EmbeddingDatasetWriter writer(staging, static_cast<int64_t>(rows.size()), shards[0].dim(), dtype);

  std::vector<DatasetError> image_errors;
  for (const auto& s : shards)
    for (const DatasetError& e : s.errors())
      if (!e.image.empty()) image_errors.push_back(e);
  std::stable_sort(image_errors.begin(), image_errors.end(),
                   [](const DatasetError& a, const DatasetError& b) { return a.plan_index < b.plan_index; });
  for (const DatasetError& e : shards[0].errors())
    if (e.image.empty()) writer.add_error(e);
  for (DatasetError e : image_errors) {
    e.plan_index = -1;
    writer.add_error(e);
  }

  MergeResult result;
  constexpr size_t kBlock = 1024;
  for (size_t begin = 0; begin < rows.size(); begin += kBlock) {
    std::vector<DatasetEntry> entries;
    std::vector<torch::Tensor> block;
    for (size_t i = begin; i < std::min(rows.size(), begin + kBlock); ++i) {
      DatasetEntry e = shards[rows[i].shard].entries()[rows[i].row];
      e.plan_index = -1;
      result.captions += static_cast<int64_t>(e.captions.size());
      entries.push_back(std::move(e));
      block.push_back(embeds[rows[i].shard][rows[i].row]);
    }
    writer.append(entries, torch::stack(block));
  }
  json meta = without(first, {"shard", "counts"});
  meta["counts"] = {{"recovered_rows", first["counts"].value("recovered_rows", 0)}};
  writer.finish(meta);
  replace_directory(staging, out);
  result.images = static_cast<int64_t>(rows.size());
  result.shards = count;
  return result;
}

}  // namespace clipcap
