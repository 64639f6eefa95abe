#include "backend/backend_flags.h"

#include <fstream>
#include <iterator>

#include "common/cli_flags.h"
#include "common/error.h"

namespace clipcap {

namespace {

LoadedBackend load_local(const BackendFlags& f, const CLI::App& cmd, const LocalBackendOptions& batches) {
  if (f.model.empty()) throw Error("--backend local needs -m/--model, a clipcap model directory");
  for (const char* flag : {"--endpoint", "--api-model", "--prompt", "--prompt-file"})
    if (flag_given(cmd, flag)) throw Error(std::string(flag) + " is for --backend openai (the backend is local)");
  LoadedCaptioner loaded = load_captioner(f, cmd);
  const bool image_embeds = loaded.captioner.config().prefix_input == "image_embeds";
  auto backend = std::make_unique<LocalBackend>(std::move(loaded.captioner), f.model, batches);
  if (loaded.decoding.rerank != "none" && f.rerank_clip.empty())
    throw Error("--rerank " + loaded.decoding.rerank +
                " needs --rerank-clip DIR: a CLIP directory with its text tower (the CLIP the model was trained "
                "with, e.g. models/emoji-clip for the default)");
  if (!f.rerank_clip.empty()) {
    auto clip = std::make_unique<ClipEmbedder>(f.rerank_clip, "--rerank-clip", f.runtime.torch_dtype());
    const bool shared = same_vision_tower(f.model, f.rerank_clip, image_embeds);
    backend->set_reranker(std::make_unique<ClipReranker>(std::move(clip)), shared);
  }
  return {std::move(backend), loaded.decoding};
}

LoadedBackend load_openai(const BackendFlags& f, const CLI::App& cmd, const LocalBackendOptions&) {
  if (!f.model.empty()) throw Error("--backend openai: -m/--model is for the local backend; the endpoint's model is --api-model");
  if (!f.rerank_clip.empty()) throw Error("--rerank-clip is for the local backend (--backend openai writes one caption per request)");
  OpenAIBackendOptions o = f.remote;
  if (!f.api_key_file.empty()) o.endpoint.api_key = read_api_key_file(f.api_key_file);
  const std::string prompt = given_prompt(f);
  if (!prompt.empty()) o.prompt = prompt;
  DecodeOptions decoding = resolve_decoding(cmd, f, DecodeOptions{});
  if (flag_given(cmd, "--max-len")) o.max_tokens = decoding.max_len;
  chat_params(decoding, o.max_tokens);  // refuses beam search before any request
  return {std::make_unique<OpenAIBackend>(std::move(o)), decoding};
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
      {"openai", "a vision-language model behind an OpenAI-compatible endpoint (--endpoint, --api-model)", load_openai},
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
  cmd.add_option("--rerank-clip", f.rerank_clip,
                 "HF CLIP directory with its text tower that scores the candidates of --rerank clip")
      ->group(group);
  add_runtime_flags(cmd, f.runtime);
}

void add_remote_backend_flags(CLI::App& cmd, BackendFlags& f) {
  const std::string remote = "Remote backend (--backend openai)";
  OpenAIBackendOptions& r = f.remote;
  cmd.add_option("--endpoint", r.endpoint.url, "base URL of an OpenAI-compatible API, e.g. http://localhost:8000/v1")->group(remote);
  cmd.add_option("--api-model", r.endpoint.model, "the model name the endpoint serves")->group(remote);
  cmd.add_option("--api-key-file", f.api_key_file, "file whose first line is the API key (sent as a Bearer token)")->group(remote);
  auto* prompt = cmd.add_option("--prompt", f.prompt, "the instruction sent with each image (default: \"" + r.prompt + "\")")->group(remote);
  cmd.add_option("--prompt-file", f.prompt_file, "the instruction, from a file")->group(remote)->excludes(prompt);
  cmd.add_option("--concurrency", r.concurrency, "requests in flight")->group(remote)->capture_default_str();
  cmd.add_option("--timeout", r.endpoint.timeout_s, "seconds an attempt may take")->group(remote)->capture_default_str();
  cmd.add_option("--retries", r.endpoint.retries, "attempts after the first on connection errors, timeouts, 429 and 5xx")
      ->group(remote)->capture_default_str();
  cmd.add_option("--retry-delay", r.endpoint.retry_delay_s, "seconds before the first retry; doubles each time")
      ->group(remote)->capture_default_str();
  cmd.add_option("--image-format", r.image_format, "how images are sent: jpeg, or png (lossless)")->group(remote)->capture_default_str();
  cmd.add_option("--jpeg-quality", r.jpeg_quality, "JPEG quality of the images sent")->group(remote)->capture_default_str();
}

std::string given_prompt(const BackendFlags& f) {
  if (f.prompt_file.empty()) return f.prompt;
  std::ifstream in(f.prompt_file, std::ios::binary);
  if (!in) throw Error(f.prompt_file + ": cannot read the prompt file");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) throw Error(f.prompt_file + ": the prompt file is empty");
  return text;
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
  load.int8_weights = f.runtime.int8_weights();
  load.frozen = true;
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
