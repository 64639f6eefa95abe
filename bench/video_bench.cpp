// Video captioning speed of clipcap's pipeline (the library path `clipcap-infer video` is a thin
// CLI over): realtime factor = video duration / wall time for one video, with random weights of
// the small configuration's shapes (CLIP ViT-B/32 -> upstream ConfigS mapping -> GPT-2 small).
//
//   build/bench/video_bench --video .cache/video-bench/bench_720p_600s.mp4 --mode uniform -N 60 --threads 2
//   build/bench/video_bench --video ... --mode scenes
//   build/bench/video_bench --video ... -N 60 --seek keyframe
//   build/bench/video_bench --videos clips.txt -N 4 --video-workers 1    # a batch: clips/s
//
// Every caption is exactly --tokens greedy tokens (EOS banned: DecodeOptions min_len = max_len),
// as bench/py_video_baseline.py does, so both sides do the same model work per caption. The model
// is built once before timing (the CLI loads it once per run); timed: VideoCaptioner::caption(),
// i.e. decoding, frame choice, preprocessing, CLIP, mapping, generation and writing the JSON.
// One JSON object per run on stdout; bench/run_video_bench.sh runs both sides and writes the table.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "backend/local_backend.h"
#include "bench/random_captioner.h"
#include "common/cli_main.h"
#include "common/error.h"
#include "common/runtime.h"
#include "infer/video_captioner.h"
#include "infer/video_decoder.h"
#include "model/captioner.h"

namespace {

// Seconds per phase; the reader's sum over its workers (they overlap each other and the model).
nlohmann::json timings_json(const clipcap::VideoCaptionTimings& t) {
  return {{"wall", t.wall},
          {"reader_decode", t.reader_decode},
          {"reader_frames", t.reader_frames},
          {"reader_blocked", t.reader_blocked},
          {"model_clip", t.model_clip},
          {"model_captions", t.model_captions}};
}

int run(int argc, char** argv) {
  CLI::App app{"clipcap video captioning speed (realtime factor)", "video_bench"};
  std::string video, videos_list, mode = "uniform", dtype = "f32", out_dir, seek = "exact", model_dir;
  int video_workers = 0;
  int num_frames = 60, tokens = 20, threads = 2, reps = 1, batch = 16, caption_batch = 64, scene_frames = 3, decode_threads = 0, readers = 2;
  uint64_t seed = 0;
  bool decode_only = false, model_only = false;
  int64_t model_only_frames = 108, model_only_captions = 36;
  auto* one = app.add_option("--video", video, "video file");
  app.add_option("--videos", videos_list, "a file with a video path per line: caption them as one batch (clips/s)")
      ->excludes(one);
  app.add_option("--seek", seek, "exact | keyframe")->capture_default_str();
  app.add_option("--video-workers", video_workers, "batch: videos decoded at once (0 = from the cores)")->capture_default_str();
  app.add_option("--model", model_dir, "a clipcap model directory instead of the random ViT-B/32 + GPT-2 small");
  app.add_option("--mode", mode, "uniform | scenes")->capture_default_str();
  app.add_option("-N", num_frames, "uniform: frames")->capture_default_str();
  app.add_option("--scene-frames", scene_frames, "scenes: frames per scene")->capture_default_str();
  app.add_option("--tokens", tokens, "tokens per caption (EOS banned until then)")->capture_default_str();
  app.add_option("--threads", threads, "libtorch intra-op threads")->capture_default_str();
  app.add_option("--decode-threads", decode_threads, "libav decoding threads (0 = clipcap's choice per sampling)")->capture_default_str();
  app.add_option("--readers", readers, "uniform: decoders per video (VideoCaptionOptions::planned_readers)")->capture_default_str();
  app.add_option("--batch-size", batch, "frames per CLIP forward")->capture_default_str();
  app.add_option("--caption-batch", caption_batch, "captions per generation batch")->capture_default_str();
  app.add_option("--dtype", dtype, "f32 | bf16 | int8")->capture_default_str();
  app.add_option("--reps", reps, "timed runs (the median is reported)")->capture_default_str();
  app.add_option("--seed", seed, "weights")->capture_default_str();
  app.add_flag("--model-only", model_only, "time only CLIP + captioning of as many frames (random pixels)");
  app.add_option("--model-frames", model_only_frames, "scenes --model-only: frames")->capture_default_str();
  app.add_option("--model-captions", model_only_captions, "scenes --model-only: captions")->capture_default_str();
  app.add_flag("--decode-only", decode_only, "time only decoding + frame conversion (no model)");
  app.add_option("--out-dir", out_dir, "where the JSON subtitles go (default: a temporary directory)");
  CLI11_PARSE(app, argc, argv);
  if (video.empty() && videos_list.empty()) throw clipcap::Error("give --video or --videos");

  clipcap::RuntimeOptions rt;
  rt.threads = threads;
  rt.dtype = dtype;
  clipcap::apply_runtime(rt);
  if (out_dir.empty()) out_dir = (std::filesystem::temp_directory_path() / "clipcap-video-bench").string();

  const auto t_model = std::chrono::steady_clock::now();
  clipcap::CaptionerLoadOptions load;
  load.dtype = rt.torch_dtype();
  load.int8_weights = rt.int8_weights();
  auto captioner = model_dir.empty() ? clipcap::bench::random_captioner(rt.torch_dtype(), seed)
                                     : clipcap::Captioner::load(model_dir, load);
  if (rt.int8_weights()) captioner.quantize_int8();  // the random one (a loaded one already is)
  captioner.freeze_weights();  // as clipcap-infer loads it
  const double model_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_model).count();

  clipcap::VideoCaptionOptions opts;
  opts.sampling = mode == "scenes" ? clipcap::Sampling::kScenes : clipcap::Sampling::kUniform;
  if (mode != "scenes" && mode != "uniform" && !(decode_only && mode == "all"))
    throw clipcap::Error("--mode: uniform or scenes (or all with --decode-only)");
  opts.num_frames = num_frames;
  opts.scene_frames = scene_frames;
  opts.out_dir = out_dir;
  opts.formats = {"json"};  // the JSON is enough (writing is not the point)
  opts.decoding.max_len = opts.decoding.min_len = tokens;
  opts.decoder.threads = decode_threads;
  opts.planned_readers = readers;
  opts.seek = seek == "keyframe" ? clipcap::Seek::kKeyframe : clipcap::Seek::kExact;
  opts.video_workers = video_workers;

  if (!videos_list.empty()) {  // a batch of clips, one model: clips/s
    std::vector<std::string> paths;
    std::ifstream in(videos_list);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) paths.push_back(line);
    clipcap::LocalBackend backend(std::move(captioner), model_dir.empty() ? "random" : model_dir, {batch, caption_batch});
    clipcap::VideoCaptioner vc(backend, opts);
    std::vector<double> times;
    int64_t failed = 0, frames = 0;
    for (int r = 0; r < reps; ++r) {
      failed = frames = 0;
      const auto t0 = std::chrono::steady_clock::now();
      vc.caption_all(paths, [&](const clipcap::VideoResult& v) {
        failed += v.ok ? 0 : 1;
        frames += v.frames;
      });
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      std::cerr << "video_bench: batch rep " << r << ": " << times.back() << " s, " << paths.size() << " clips\n";
    }
    std::sort(times.begin(), times.end());
    const double median = times[times.size() / 2];
    nlohmann::json rec = {{"impl", "clipcap"}, {"batch", true}, {"seek", seek}, {"video_workers", video_workers},
                          {"effective_workers", clipcap::video_workers_for(opts, paths.size())},
                          {"model", model_dir.empty() ? "random ViT-B/32 + GPT-2 small" : model_dir},
                          {"dtype", dtype}, {"threads", threads}, {"tokens", tokens}, {"num_frames", num_frames},
                          {"clips", paths.size()}, {"failed", failed}, {"frames", frames}, {"median_s", median},
                          {"times_s", times}, {"clips_per_s", static_cast<double>(paths.size()) / median},
                          {"frames_decoded", vc.timings().frames_decoded}};
    rec["timings_s"] = timings_json(vc.timings());
    std::cout << rec.dump() << std::endl;
    return 0;
  }
  const double duration = clipcap::VideoDecoder(video).info().duration_s;

  if (model_only) {  // where the time goes: the same number of frames and captions, random pixels
    const int64_t frames = mode == "uniform" ? num_frames : model_only_frames;
    const int64_t captions = mode == "uniform" ? num_frames : model_only_captions;
    const auto px = torch::randn({frames, 3, 224, 224});
    torch::NoGradGuard no_grad;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<torch::Tensor> embs;
    for (int64_t i = 0; i < frames; i += batch) embs.push_back(captioner.embed_images(px.slice(0, i, std::min(frames, i + batch))));
    const auto emb = torch::cat(embs);  // (frames, 768)
    const double clip_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (int64_t i = 0; i < captions; i += caption_batch) {
      const int64_t first = i % frames, n = std::min<int64_t>(caption_batch, captions - i);
      captioner.caption_embeddings(emb.slice(0, first, std::min(frames, first + n)), opts.decoding);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json rec = {{"impl", "clipcap"}, {"mode", mode}, {"phase", "model"}, {"seconds", s}, {"clip_s", clip_s},
                          {"frames", frames}, {"captions", captions}};
    std::cout << rec.dump() << std::endl;
    return 0;
  }

  if (decode_only) {  // where the time goes: seeking + decoding + RGB + CLIP preprocessing, no model
    const auto t0 = std::chrono::steady_clock::now();
    clipcap::VideoDecoderOptions dopts;
    dopts.threads = decode_threads;
    clipcap::VideoDecoder dec(video, dopts);
    int64_t converted = 0;
    if (mode == "uniform") {
      for (int i = 0; i < num_frames; ++i) {
        if (dec.advance_to(i * duration / num_frames)) {
          captioner.processor().preprocess(dec.rgb());
          ++converted;
        }
      }
    } else if (mode == "scenes") {
      while (dec.next()) dec.rgb_scaled(160, 90);
    } else {  // "all": decoding alone
      while (dec.next()) {
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json rec = {{"impl", "clipcap"}, {"mode", mode}, {"phase", "decode"}, {"seconds", s},
                          {"frames_decoded", dec.frames_decoded()}, {"frames_converted", converted}};
    std::cout << rec.dump() << std::endl;
    return 0;
  }

  clipcap::LocalBackend backend(std::move(captioner), "random ViT-B/32 + GPT-2 small", {batch, caption_batch});
  clipcap::VideoCaptioner vc(backend, opts);
  std::vector<double> times;
  clipcap::VideoResult last;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    last = vc.caption(video);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (!last.ok) throw clipcap::Error(last.error);
    std::cerr << "video_bench: " << mode << " rep " << r << ": " << times.back() << " s, " << last.frames << " frames, "
              << last.cues.size() << " cues\n";
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  nlohmann::json rec = {{"impl", "clipcap"},       {"mode", mode},          {"dtype", dtype},
                        {"threads", threads},       {"tokens", tokens},      {"video_s", duration},
                        {"frames", last.frames},    {"cues", last.cues.size()}, {"median_s", median},
                        {"times_s", times},         {"rtf", duration / median}, {"model_build_s", model_s},
                        {"num_frames", num_frames}, {"scene_frames", scene_frames},
                        {"decode_threads", decode_threads}, {"readers", readers}, {"seek", seek}};
  rec["timings_s"] = timings_json(vc.timings());
  rec["frames_decoded"] = vc.timings().frames_decoded;
  std::cout << rec.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clipcap::run_main("video_bench", [&] { return run(argc, argv); });
}
