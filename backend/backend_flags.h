// The flags that choose and configure a caption backend, declared once for every command that
// captions (clipcap-infer image / video, clipcap-eval), and the loading they lead to.
//
//   clipcap::BackendFlags f;
//   clipcap::add_backend_flags(*cmd, f);       // -m/--model, decoding flags, --threads/--dtype/--device
//   ... parse ...
//   clipcap::LoadedBackend b = clipcap::load_backend(f, *cmd);   // --backend local (default) or openai
//   b.backend->caption_images(images, b.decoding);
//
// Reranking (--rerank clip) loads the CLIP of --rerank-clip next to the model; a local backend
// given --rerank-clip without --rerank clip loads it too, so a server's requests can ask for it.
// Decoding: the model's config.json "decoding" defaults, overridden by the decoding flags actually
// given (a remote backend has no config.json: the built-in defaults, and only a given --max-len
// becomes its requests' max_tokens). Besides --strategy, two shorthands keep older command lines working: --sample means
// --strategy sample, and --beam-size K alone means --strategy beam (K > 1) or greedy (K = 1).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "backend/local_backend.h"
#include "backend/openai_backend.h"
#include "common/runtime.h"
#include "model/decode_options.h"

namespace clipcap {

struct BackendFlags {
  std::string backend = "local";  // --backend: a name of caption_backends()
  std::string model;        // -m/--model: a clipcap model directory
  DecodeOptions decoding;   // the decoding flags' values
  bool sample = false;      // --sample
  RuntimeOptions runtime;   // --threads --dtype --device
  OpenAIBackendOptions remote;  // --backend openai: --endpoint --api-model --concurrency ...
  std::string api_key_file, prompt, prompt_file;  // --api-key-file, --prompt, --prompt-file
  std::string rerank_clip;  // --rerank-clip: the CLIP that reranks (--rerank clip)
};

void add_backend_flags(CLI::App& cmd, BackendFlags& flags, bool model_required = true);
// --endpoint, --api-model, --api-key-file, --prompt, --concurrency, ...: for commands that can
// caption through a remote backend (clipcap-infer image / video, clipcap-eval).
void add_remote_backend_flags(CLI::App& cmd, BackendFlags& flags);

// The model's decoding defaults with the decoding flags given on cmd (or its parsed subcommands)
// applied; validated (Error naming the flag).
DecodeOptions resolve_decoding(const CLI::App& cmd, const BackendFlags& flags, const DecodeOptions& model_defaults);

struct LoadedCaptioner {
  Captioner captioner;
  DecodeOptions decoding;  // resolved as above
};
// The prompt of --prompt or --prompt-file (Error naming the file); "" when neither was given (a
// remote backend then sends OpenAIBackendOptions' default).
std::string given_prompt(const BackendFlags& flags);

// Applies the runtime flags, loads --model and resolves the decoding options.
LoadedCaptioner load_captioner(const BackendFlags& flags, const CLI::App& cmd);

struct LoadedBackend {
  std::unique_ptr<CaptionBackend> backend;
  DecodeOptions decoding;
};
// The backend --backend names, loaded with these batch sizes (validated first).
LoadedBackend load_backend(const BackendFlags& flags, const CLI::App& cmd, LocalBackendOptions batches = {});

// Every caption backend, by its --backend name: the one place a backend is registered (its own
// flags go into BackendFlags and add_backend_flags).
struct BackendEntry {
  std::string name, help;
  LoadedBackend (*load)(const BackendFlags& flags, const CLI::App& cmd, const LocalBackendOptions& batches);
};
const std::vector<BackendEntry>& caption_backends();

}  // namespace clipcap
