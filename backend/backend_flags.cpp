#include "backend/backend_flags.h"

#include "common/cli_flags.h"
#include "common/error.h"

namespace clipcap {

namespace {

LoadedBackend load_local(const BackendFlags& f, const CLI::App& cmd, const LocalBackendOptions& batches) {
  if (f.model.empty()) throw Error("--backend local needs -m/--model, a clipcap model directory");
  LoadedCaptioner loaded = load_captioner(f, cmd);
  return {std::make_unique<LocalBackend>(std::move(loaded.captioner), f.model, batches), loaded.decoding};
}

std::string backend_names() {
  std::string names;
  for (const auto& b : caption_backends()) names += (names.empty() ? "" : ", ") + b.name;
  return names;
}

}  // namespace

const std::vector<BackendEntry>& caption_backends() {
  static const std::vector<BackendEntry> all = {
      {"local", "the clipcap model of -m/--model, on this machine", load_local},
  };
  return all;
}

void add_backend_flags(CLI::App& cmd, BackendFlags& f, bool model_required) {
  cmd.add_option("--backend", f.backend, "what writes the captions: " + backend_names())->capture_default_str();
  auto* model = cmd.add_option("-m,--model", f.model, "clipcap model directory");
  if (model_required) model->required();
  const std::string group = "Decoding (defaults: the model's config.json, else these)";
  add_table_flags(cmd, decode_option_table(), f.decoding, group);
  cmd.add_flag("--sample", f.sample, "the same as --strategy sample")->group(group);
  add_runtime_flags(cmd, f.runtime);
}

DecodeOptions resolve_decoding(const CLI::App& cmd, const BackendFlags& f, const DecodeOptions& model_defaults) {
  DecodeOptions d = given_table_flags(cmd, decode_option_table(), f.decoding, model_defaults);
  const bool beams_given = flag_given(cmd, "--beam-size");
  if (f.sample) {
    if (flag_given(cmd, "--strategy") && d.strategy != "sample")
      throw Error("--sample and --strategy " + d.strategy + " disagree: give one of them");
    if (beams_given && d.beam_size > 1)
      throw Error("--sample cannot be combined with --beam-size " + std::to_string(d.beam_size) +
                  " (sampling draws one caption per image)");
    d.strategy = "sample";
  } else if (beams_given && !flag_given(cmd, "--strategy")) {
    d.strategy = d.beam_size > 1 ? "beam" : "greedy";
  }
  d.validate();
  return d;
}

LoadedCaptioner load_captioner(const BackendFlags& f, const CLI::App& cmd) {
  apply_runtime(f.runtime);
  CaptionerLoadOptions load;
  load.dtype = f.runtime.torch_dtype();
  load.device = f.runtime.torch_device();
  Captioner captioner = Captioner::load(f.model, load);
  DecodeOptions decoding = resolve_decoding(cmd, f, captioner.config().decoding);
  return {std::move(captioner), decoding};
}

LoadedBackend load_backend(const BackendFlags& f, const CLI::App& cmd, LocalBackendOptions batches) {
  batches.validate();  // before the model loads: flag mistakes cost nothing
  for (const auto& b : caption_backends())
    if (b.name == f.backend) return b.load(f, cmd, batches);
  throw Error("--backend: unknown backend '" + f.backend + "' (" + backend_names() + ")");
}

}  // namespace clipcap
