// Dataset-build speed of clipcap: images/s of the product path (clipcap::build_embedding_dataset,
// exactly what `clipcap-data build` runs: decode + CLIP preprocessing on worker threads, batched
// CLIP forwards, chunk files, the final dataset) on a random-weight CLIP of ViT-B/32 shapes.
//
//   build/bench/data_bench make-clip --out /tmp/vitb32      # random weights, HF layout, once
//   build/bench/data_bench run --clip /tmp/vitb32 --captions results.csv --images jpegs
//       --work /tmp/bench-out --dtype f32 --threads 2 --batch-size 32 --reps 3    (one line)
//
// make-clip writes config.json (CLIPVisionModelWithProjection: image 224, patch 32, width 768,
// 12 layers, 12 heads, MLP 3072, quick_gelu), preprocessor_config.json (OpenAI's: shortest edge
// 224 bicubic, centre crop 224, CLIP mean/std) and model.safetensors (f32), which
// bench/py_data_baseline.py loads too: both sides compute the same embeddings.
// run builds the dataset --reps times from scratch (each rep deletes the previous output) and
// prints one JSON line per rep: wall time, the model-load time measured before the reps, and
// images/s = images / (wall - load) next to the builder's own embedding-phase rate.
// phases times the two parts alone: decode + preprocessing on one thread (ms per image) and the
// batched CLIP forward with --threads (ms per image): where a build's time goes.
// bench/run_data_bench.sh runs both sides and writes the table.
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <string>

#include "bench/vit_b32.h"
#include "common/atomic_file.h"
#include "common/cli_flags.h"
#include "common/cli_main.h"
#include "common/error.h"
#include "common/runtime.h"
#include "data/dataset_builder.h"
#include "data/dataset_sources.h"
#include "image/image_io.h"
#include "model/clip.h"
#include "model/image_processor.h"
#include "model/weights/load_weights.h"
#include "model/weights/safetensors.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

clipcap::CLIPConfig vit_b32() {
  clipcap::CLIPConfig cfg;
  cfg.vision_only = true;  // the dataset build loads only the vision tower
  cfg.projection_dim = 512;
  cfg.vision = clipcap::bench::vit_b32_vision();
  return cfg;
}

void make_clip(const std::string& out, uint64_t seed) {
  torch::manual_seed(seed);
  const clipcap::CLIPConfig cfg = vit_b32();
  clipcap::CLIPModel clip(cfg, /*with_text=*/false);
  // CLIP-like magnitudes, N(0, 0.02) with LayerNorms left at ones/zeros, whatever the modules'
  // own init did: activations stay in a trained model's range (no denormals or infs to time).
  {
    torch::NoGradGuard no_grad;
    for (auto& p : clip->named_parameters()) {
      const std::string& name = p.key();
      if (name.find("norm") != std::string::npos) continue;  // layer_norm1/2, pre_layrnorm, post_layernorm
      p.value().normal_(0.0, 0.02);
    }
  }
  fs::create_directories(out);
  clipcap::write_file_atomic(out + "/config.json", cfg.to_json().dump(2) + "\n");
  clipcap::write_file_atomic(out + "/preprocessor_config.json",
                             clipcap::ImageProcessorConfig{}.to_json().dump(2) + "\n");
  clipcap::save_safetensors(out + "/model.safetensors", clipcap::collect_weights(*clip), {{"format", "pt"}});
  std::cerr << "data_bench: wrote a random-weight ViT-B/32 CLIP vision model to " << out << "\n";
}

struct RunOptions {
  clipcap::BuildOptions build;
  std::string work;  // output datasets go to WORK/<dtype>
  int reps = 3;      // timed builds; each starts from an empty output
};

void run(RunOptions o) {
  clipcap::apply_runtime(o.build.runtime);
  const int threads = o.build.runtime.threads > 0 ? o.build.runtime.threads : clipcap::available_cores();
  o.build.out = o.work + "/" + o.build.runtime.dtype;
  o.build.overwrite = true;
  o.build.restart = true;
  o.build.progress.log_every_seconds = 1e9;  // only the final line

  // The model-load part of a build's wall time, measured alone (this also warms the page cache,
  // as the Python side's load does).
  auto t0 = Clock::now();
  {
    auto proc = clipcap::ImageProcessor::from_dir(o.build.clip);
    auto clip = clipcap::load_clip(o.build.clip, {o.build.runtime.float_dtype(), /*with_text=*/false});
  }
  const double load_s = seconds_since(t0);

  for (int rep = 0; rep < o.reps; ++rep) {
    std::error_code ec;
    fs::remove_all(o.build.out, ec);
    fs::remove_all(o.build.out + ".partial", ec);
    auto t = Clock::now();
    clipcap::BuildResult r = clipcap::build_embedding_dataset(o.build);
    const double wall = seconds_since(t);
    if (!r.finished) throw clipcap::Error("data_bench: the build stopped early");
    nlohmann::json line = {{"impl", "clipcap"},
                           {"dtype", o.build.runtime.dtype},
                           {"batch", o.build.batch_size},
                           {"threads", threads},
                           {"workers", o.build.workers > 0 ? o.build.workers : clipcap::available_cores()},
                           {"rep", rep},
                           {"images", r.embedded},
                           {"image_errors", r.image_errors},
                           {"wall_s", wall},
                           {"load_s", load_s},
                           {"images_per_s", r.embedded / std::max(1e-9, wall - load_s)},
                           {"tool_images_per_s", r.images_per_second}};
    std::cout << line.dump() << std::endl;
  }
}

// Where the time goes: the build's two kinds of work, each alone.
void phases(RunOptions o, int images) {
  clipcap::apply_runtime(o.build.runtime);
  auto items = clipcap::read_caption_source(o.build.captions, o.build.source).items;
  items.resize(std::min<size_t>(items.size(), static_cast<size_t>(std::max(images, o.build.batch_size))));
  auto proc = clipcap::ImageProcessor::from_dir(o.build.clip);
  auto clip = clipcap::load_clip(o.build.clip, {o.build.runtime.float_dtype(), /*with_text=*/false});
  clip->eval();

  std::vector<torch::Tensor> pixels;
  auto t = Clock::now();
  for (const auto& item : items) pixels.push_back(proc.preprocess(clipcap::read_image(o.build.images + "/" + item.image)));
  const double decode_ms = seconds_since(t) * 1e3 / static_cast<double>(items.size());

  torch::NoGradGuard no_grad;
  torch::Tensor batch = torch::stack(std::vector<torch::Tensor>(pixels.begin(), pixels.begin() + o.build.batch_size));
  clip->vision_model->pooled(batch);  // warm-up (oneDNN kernels are generated on first use)
  std::vector<double> runs;
  for (int rep = 0; rep < std::max(1, o.reps); ++rep) {
    t = Clock::now();
    clip->vision_model->pooled(batch);  // what the build runs
    runs.push_back(seconds_since(t) * 1e3 / static_cast<double>(o.build.batch_size));
  }
  std::sort(runs.begin(), runs.end());
  nlohmann::json line = {{"impl", "clipcap"},
                         {"phases", true},
                         {"dtype", o.build.runtime.dtype},
                         {"batch", o.build.batch_size},
                         {"threads", o.build.runtime.threads > 0 ? o.build.runtime.threads : clipcap::available_cores()},
                         {"decode_images", items.size()},
                         {"decode_ms_per_image_1_thread", decode_ms},
                         {"forward_ms_per_image", runs[runs.size() / 2]}};
  std::cout << line.dump() << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  return clipcap::run_main("data_bench", [&]() -> int {
    CLI::App app{"clipcap dataset-build benchmark (bench/README.md)"};
    app.require_subcommand(1);

    std::string clip_out;
    uint64_t seed = 0;
    auto* mk = app.add_subcommand("make-clip", "write a random-weight ViT-B/32 CLIP directory");
    mk->add_option("--out", clip_out, "directory to write")->required();
    mk->add_option("--seed", seed, "weight seed")->capture_default_str();

    RunOptions o;
    auto* rn = app.add_subcommand("run", "time clipcap's dataset build");
    rn->add_option("--clip", o.build.clip, "CLIP directory (make-clip)")->required();
    rn->add_option("--captions", o.build.captions, "captions file (Flickr results.csv)")->required();
    rn->add_option("--images", o.build.images, "image root")->required();
    rn->add_option("--work", o.work, "where the datasets are written")->required();
    rn->add_option("--format", o.build.source.format, "caption format")->capture_default_str();
    rn->add_option("--batch-size", o.build.batch_size, "images per CLIP forward")->capture_default_str();
    rn->add_option("--workers", o.build.workers, "decode threads (0 = all cores)")->capture_default_str();
    rn->add_option("--reps", o.reps, "timed builds")->capture_default_str();
    clipcap::add_runtime_flags(*rn, o.build.runtime);

    int phase_images = 64;
    auto* ph = app.add_subcommand("phases", "time decode + preprocessing and the CLIP forward alone");
    ph->add_option("--clip", o.build.clip, "CLIP directory (make-clip)")->required();
    ph->add_option("--captions", o.build.captions, "captions file (Flickr results.csv)")->required();
    ph->add_option("--images", o.build.images, "image root")->required();
    ph->add_option("--decode-images", phase_images, "images decoded")->capture_default_str();
    ph->add_option("--batch-size", o.build.batch_size, "images per CLIP forward")->capture_default_str();
    ph->add_option("--reps", o.reps, "timed forwards (median)")->capture_default_str();
    clipcap::add_runtime_flags(*ph, o.build.runtime);

    if (auto code = clipcap::parse_flags(app, argc, argv)) return *code;
    if (mk->parsed()) make_clip(clip_out, seed);
    if (rn->parsed()) run(o);
    if (ph->parsed()) phases(o, phase_images);
    return 0;
  });
}
