// clipcap-infer: caption images with a clipcap model; convert upstream checkpoints.
//
//   clipcap-infer image --model DIR [decoding flags] [runtime flags] IMAGE...
//       One caption per line on stdout, in input order. An image that cannot be read gets an
//       error line on stderr ("clipcap-infer: error: <path>: <problem>") and an EMPTY line on
//       stdout, so line N is always image N; the others are still captioned and the exit code
//       is 1 at the end. A newline inside a caption is printed as a space.
//   clipcap-infer import-upstream --checkpoint model.pt --config upstream_config.json
//       [--clip DIR] [--gpt2 DIR] --out DIR
//
// Exit codes: 0 success, 1 an error (missing/invalid model, unreadable image, ...), 2 usage error.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "common/cli_flags.h"
#include "common/cli_main.h"
#include "common/error.h"
#include "data/image_io.h"
#include "model/captioner.h"
#include "model/upstream_import.h"

namespace {

const char* kProgram = "clipcap-infer";

struct ImageCommand {
  std::string model;
  std::vector<std::string> images;
  int batch_size = 16;  // images per forward pass
  clipcap::DecodeOptions decoding;
  clipcap::RuntimeOptions runtime;
};

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

int caption_images(const ImageCommand& cmd, const CLI::App& sub) {
  if (cmd.batch_size < 1) throw clipcap::Error("--batch-size must be >= 1");
  clipcap::apply_runtime(cmd.runtime);
  clipcap::CaptionerLoadOptions load;
  load.dtype = cmd.runtime.torch_dtype();
  load.device = cmd.runtime.torch_device();
  auto captioner = clipcap::Captioner::load(cmd.model, load);
  clipcap::DecodeOptions opts = clipcap::given_decode_flags(sub, cmd.decoding, captioner.config().decoding);
  opts.validate();

  bool failed = false;
  for (size_t begin = 0; begin < cmd.images.size(); begin += cmd.batch_size) {
    const size_t end = std::min(cmd.images.size(), begin + cmd.batch_size);
    std::vector<clipcap::Image> batch;
    std::vector<bool> readable;
    for (size_t i = begin; i < end; ++i) {
      try {
        batch.push_back(clipcap::read_image(cmd.images[i]));
        readable.push_back(true);
      } catch (const clipcap::Error& e) {
        std::cerr << kProgram << ": error: " << e.what() << "\n";
        readable.push_back(false);
        failed = true;
      }
    }
    auto captions = captioner.caption_images(batch, opts);
    size_t next = 0;
    for (bool ok : readable) std::cout << (ok ? one_line(captions[next++]) : std::string()) << "\n";
    std::cout.flush();
  }
  return failed ? 1 : 0;
}

int run(int argc, char** argv) {
  CLI::App app{"Caption images with a clipcap model, or convert an upstream checkpoint.", kProgram};
  app.require_subcommand(1);

  ImageCommand image;
  CLI::App* image_cmd = app.add_subcommand("image", "caption images: one caption per line, in input order");
  image_cmd->add_option("-m,--model", image.model, "clipcap model directory")->required();
  image_cmd->add_option("images", image.images, "image files")->required();
  image_cmd->add_option("--batch-size", image.batch_size, "images per forward pass")->capture_default_str();
  clipcap::add_decode_flags(*image_cmd, image.decoding);
  clipcap::add_runtime_flags(*image_cmd, image.runtime);
  image_cmd->footer(
      "An unreadable image: error on stderr, an empty line on stdout (line N stays image N), exit code 1.");

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

  if (image_cmd->parsed()) return caption_images(image, *image_cmd);
  clipcap::import_upstream(import, out_dir);
  std::cerr << kProgram << ": wrote " << out_dir << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return clipcap::run_main(kProgram, [&] { return run(argc, argv); });
}
