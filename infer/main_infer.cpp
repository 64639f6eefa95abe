// clipcap-infer: caption images and videos with a clipcap model; convert upstream checkpoints.
//
//   clipcap-infer image --model DIR [--json|--jsonl] [--render DIR] [decoding flags] IMAGE|DIR|-...
//       Captions in input order (infer/image_command.h); directories are searched recursively for
//       images, "-" reads paths from stdin (infer/image_inputs.h).
//   clipcap-infer video --model DIR [-N K | --every S | --scenes] [--out-dir DIR] VIDEO...
//       Subtitles <stem>_caption.{srt,vtt,json} per video (infer/video_captioner.h); batches from
//       --list, resumable with --results, sharded with --shard (infer/video_batch.h).
//   clipcap-infer import-upstream --checkpoint model.pt --config upstream_config.json
//       [--clip DIR] [--gpt2 DIR] --out DIR
//
// Exit codes: 0 success, 1 an error (missing/invalid model, unreadable image, bad video, ...), 2 usage error.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <vector>

#include "backend/backend_flags.h"
#include "common/cli_flags.h"
#include "common/cli_main.h"
#include "common/error.h"
#include "infer/image_command.h"
#include "infer/image_inputs.h"
#include "infer/subtitle_formats.h"
#include "infer/video_batch.h"
#include "model/upstream_import.h"

namespace {

const char* kProgram = "clipcap-infer";

struct VideoFlags {
  std::string formats = "srt,vtt,json";
  std::string shard;
  bool scenes = false;
  std::string mode = "frames";
  std::string seek = "exact", sample_point = "start";
  std::string summary_key_file;
};

void add_batch_flags(CLI::App& cmd, clipcap::LocalBackendOptions& b, const std::string& image_help) {
  cmd.add_option("--batch-size", b.image_batch, image_help)->capture_default_str();
  cmd.add_option("--caption-batch", b.caption_batch, "captions per generation batch")->capture_default_str();
}

int run(int argc, char** argv) {
  CLI::App app{"Caption images and videos with a clipcap model, or convert an upstream checkpoint.", kProgram};
  app.require_subcommand(1);

  clipcap::BackendFlags image_model;
  clipcap::LocalBackendOptions image_batches;
  std::vector<std::string> image_args;
  clipcap::ImageCaptionOptions image;
  bool json = false, jsonl = false;
  CLI::App* image_cmd = app.add_subcommand("image", "caption images: one caption per line, in input order");
  image_cmd->add_option("images", image_args, "image files, directories (searched recursively), - for paths on stdin")
      ->required();
  add_batch_flags(*image_cmd, image_batches, "images per forward pass");
  auto* json_flag = image_cmd->add_flag("--json", json, "print one JSON array of {path, caption | error}");
  image_cmd->add_flag("--jsonl", jsonl, "print one JSON object {path, caption | error} per line")->excludes(json_flag);
  image_cmd->add_option("--render", image.render_dir,
                        "also write DIR/<stem>-R<longest side>.jpg: the image with its caption drawn under it");
  clipcap::add_backend_flags(*image_cmd, image_model, /*model_required=*/false);
  clipcap::add_remote_backend_flags(*image_cmd, image_model);
  image_cmd->footer(
      "An unreadable image: error on stderr, an empty line on stdout (line N stays image N; with --json/--jsonl an "
      "\"error\" entry), exit code 1.");

  clipcap::BackendFlags video_model;
  clipcap::LocalBackendOptions video_batches;
  clipcap::VideoCaptionOptions video;
  clipcap::VideoBatchOptions batch;
  VideoFlags vflags;
  CLI::App* video_cmd = app.add_subcommand("video", "caption videos into SRT / WebVTT / JSON subtitles");
  video_cmd->add_option("videos", batch.videos, "video files");
  auto* n_opt = video_cmd->add_option("-N,--num-frames", video.num_frames,
                                      "uniform sampling: K frames, frame i the first at or after i*duration/K")
                    ->capture_default_str();
  auto* every_opt = video_cmd->add_option("--every", video.every_s, "sample one frame every SECONDS")->excludes(n_opt);
  video_cmd->add_flag("--scenes", vflags.scenes, "one caption per detected scene")->excludes(n_opt)->excludes(every_opt);
  video_cmd->add_option("--scene-threshold", video.scenes.threshold,
                        "scene cut when the HSV frame difference (0-255) reaches this")->capture_default_str();
  video_cmd->add_option("--min-scene-len", video.scenes.min_scene_len_s, "shortest scene, seconds")->capture_default_str();
  video_cmd->add_option("--scene-frames", video.scene_frames,
                        "frames per scene whose mean embedding is captioned (1 = the middle frame)")
      ->capture_default_str();
  video_cmd->add_option("--seek", vflags.seek,
                        "exact: the first frame at or after each target time; keyframe: the nearest keyframe (one "
                        "frame decoded per sample; -N and --every)")
      ->capture_default_str();
  video_cmd->add_option("--sample-point", vflags.sample_point,
                        "start: each segment's frame at its start (upstream); mid: at its middle (EasyAnimate)")
      ->capture_default_str();
  video_cmd->add_option("--out-dir", video.out_dir, "write outputs here instead of next to each video");
  video_cmd->add_option("--formats", vflags.formats, "subtitle files to write: any of " + clipcap::subtitle_format_names())
      ->capture_default_str();
  video_cmd->add_flag("--frames", video.keep_frames, "keep the captioned frames: <stem>_captioning_frames/frame_NNNN.jpg");
  video_cmd->add_flag("--video-caption", video.video_caption,
                      "also caption the whole video (mean frame embedding): printed and in <stem>_video_caption.txt");
  video_cmd->add_option("--list", batch.list, "videos from a file: .txt (one path a line), .csv, .jsonl or .json");
  video_cmd->add_option("--path-column", batch.list_options.path_column, "csv/jsonl/json key of the video path")
      ->capture_default_str();
  video_cmd->add_option("--video-root", batch.list_options.root, "directory relative list paths are under");
  video_cmd->add_option("--results", batch.results,
                        "append one JSON line per video here; videos already there are skipped (resume)");
  video_cmd->add_flag("--retry-errors", batch.retry_errors, "with --results: run videos whose result is an error again");
  video_cmd->add_option("--shard", vflags.shard, "i/N: caption items i, i+N, i+2N, ... (default: RANK/WORLD_SIZE)");
  add_batch_flags(*video_cmd, video_batches, "frames per CLIP forward");
  video_cmd->add_option("--video-workers", video.video_workers, "videos decoded at once in a batch (0 = from the cores, at most 4)")
      ->capture_default_str();
  video_cmd->add_option("--decode-threads", video.decoder.threads, "video decoding threads (0 = 1 for -N/--every, half the cores but at least 2 for --scenes)")
      ->capture_default_str();
  clipcap::add_backend_flags(*video_cmd, video_model, /*model_required=*/false);
  clipcap::add_remote_backend_flags(*video_cmd, video_model);
  const std::string modes = "Captioning modes (--mode; prompts: README, \"Remote backends\")";
  video_cmd->add_option("--mode", vflags.mode,
                        "frames: a caption per segment; grid: the sampled frames tiled into one image, one caption; "
                        "sliding: differential captions of adjacent frames")
      ->group(modes)->capture_default_str();
  video_cmd->add_option("--grid-columns", video.grid.columns, "grid: tiles per row (1: a tall image)")
      ->group(modes)->capture_default_str();
  video_cmd->add_option("--grid-width", video.grid.tile_width, "grid: tile width in pixels")->group(modes)->capture_default_str();
  video_cmd->add_option("--first-prompt", video.prompts.first, "sliding: the instruction for the first frame")->group(modes);
  video_cmd->add_option("--summary-endpoint", video.summary.url,
                        "a text model's OpenAI-compatible base URL: the video caption is its summary of the cues")
      ->group(modes);
  video_cmd->add_option("--summary-model", video.summary.model, "the model name the summary endpoint serves")->group(modes);
  video_cmd->add_option("--summary-prompt", video.prompts.summary, "the summary instruction ({frame_captions}, {frames}, {duration})")
      ->group(modes);
  video_cmd->add_option("--summary-api-key-file", vflags.summary_key_file, "file whose first line is the summary endpoint's API key")
      ->group(modes);
  video_cmd->footer(
      "One video: cues on stdout, a bad video is an error (exit 1). Several videos, --list or --results: a batch; "
      "bad videos are reported and recorded, the others go on (exit 1 at the end if any failed).");

  clipcap::UpstreamImport import;
  std::string out_dir;
  CLI::App* import_cmd =
      app.add_subcommand("import-upstream", "convert an upstream model.pt into a clipcap model directory");
  import_cmd->add_option("--checkpoint", import.checkpoint, "upstream model.pt (a Net state_dict)")->required();
  import_cmd->add_option("--config", import.config, "upstream config JSON (ep_len, num_layers, n_heads, ...)")->required();
  import_cmd->add_option("--clip", import.clip_dir, "HF CLIP directory (default: the config's clip_model)");
  import_cmd->add_option("--gpt2", import.gpt2_dir, "HF GPT-2 directory (default: the config's text_model)");
  import_cmd->add_option("--out", out_dir, "output model directory")->required();

  if (auto code = clipcap::parse_flags(app, argc, argv)) return *code;
  for (const auto* f : {&image_model, &video_model}) {
    const CLI::App* cmd = f == &image_model ? image_cmd : video_cmd;
    if (cmd->parsed() && f->backend == "local" && f->model.empty()) {  // a usage error, as CLI11's own
      std::cerr << kProgram << ": error: --model is required (or --backend openai --endpoint URL --api-model NAME)\n"
                << "Run with --help for more information.\n";
      return 2;
    }
  }

  if (image_cmd->parsed()) {
    image.output = json ? clipcap::ImageOutput::kJson : jsonl ? clipcap::ImageOutput::kJsonl : clipcap::ImageOutput::kLines;
    const auto files = clipcap::expand_image_inputs(image_args, std::cin);
    clipcap::LoadedBackend loaded = clipcap::load_backend(image_model, *image_cmd, image_batches);
    image.decoding = loaded.decoding;
    return clipcap::caption_image_files(*loaded.backend, files, image, std::cout, std::cerr) > 0 ? 1 : 0;
  }
  if (video_cmd->parsed()) {
    if (batch.videos.empty() && batch.list.empty()) throw clipcap::Error("video: give video files or --list FILE");
    if (vflags.scenes) video.sampling = clipcap::Sampling::kScenes;
    video.mode = clipcap::parse_caption_mode(vflags.mode);
    if (vflags.seek != "exact" && vflags.seek != "keyframe")
      throw clipcap::Error("--seek must be exact or keyframe (got '" + vflags.seek + "')");
    video.seek = vflags.seek == "keyframe" ? clipcap::Seek::kKeyframe : clipcap::Seek::kExact;
    if (vflags.sample_point != "start" && vflags.sample_point != "mid")
      throw clipcap::Error("--sample-point must be start or mid (got '" + vflags.sample_point + "')");
    video.sample_point = vflags.sample_point == "mid" ? clipcap::SamplePoint::kMid : clipcap::SamplePoint::kStart;
    video.prompts.main = clipcap::given_prompt(video_model);
    if (!video.summary.url.empty()) {
      video.summary.timeout_s = video_model.remote.endpoint.timeout_s;
      video.summary.retries = video_model.remote.endpoint.retries;
      video.summary.retry_delay_s = video_model.remote.endpoint.retry_delay_s;
      if (!vflags.summary_key_file.empty()) video.summary.api_key = clipcap::read_api_key_file(vflags.summary_key_file);
      video.video_caption = true;  // the summary is the video's caption
    }
    else if (every_opt->count() > 0) video.sampling = clipcap::Sampling::kEvery;
    video.formats = clipcap::parse_subtitle_formats(vflags.formats);
    if (!vflags.shard.empty()) batch.shard = clipcap::ShardSpec::parse(vflags.shard);
    video.validate();  // before the model loads: flag mistakes cost nothing
    clipcap::LoadedBackend loaded = clipcap::load_backend(video_model, *video_cmd, video_batches);
    video.decoding = loaded.decoding;
    if (video.video_caption && loaded.backend->reads_prompts() && video.mode != clipcap::CaptionMode::kGrid &&
        video.summary.url.empty())
      throw clipcap::Error("--video-caption with a remote backend: give --summary-endpoint (a text model summarises the "
                           "cues) or use --mode grid (one request sees the whole video)");
    return clipcap::run_video_command(*loaded.backend, video, batch, std::cout, std::cerr);
  }
  clipcap::import_upstream(import, out_dir);
  std::cerr << kProgram << ": wrote " << out_dir << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clipcap::run_main(kProgram, [&] { return run(argc, argv); });
}
