// Converts an upstream (jmisilo/clip-gpt-captioning) checkpoint into a native model directory.
//
//   clipcap::UpstreamImport in;
//   in.checkpoint = "weights/small/model.pt";          // torch.save(Net.state_dict())
//   in.config = "upstream_config.json";                 // upstream Config fields (ep_len, n_heads, ...)
//   clipcap::import_upstream(in, "models/upstream-small");
//   auto cap = clipcap::Captioner::load("models/upstream-small");   // "legacy": true
//
// The checkpoint holds ie.model.* (CLIP vision), mp.* (mapping), td.model.transformer.* and
// td.model.lm_head.weight (GPT-2); the old buffers (position_ids, attn.bias, attn.masked_bias)
// are ignored. Architecture configs, the image processor and the tokenizer come from the CLIP
// and GPT-2 directories: the upstream config's clip_model / text_model, resolved relative to the
// config file, unless clip_dir / gpt2_dir are given. The written model is "legacy": it captions
// with upstream's algorithm (legacy_captioner.h), max_len from the upstream config.
#pragma once

#include <string>

namespace clipcap {

struct UpstreamImport {
  std::string checkpoint;  // model.pt
  std::string config;      // upstream config JSON
  std::string clip_dir;    // "" = the config's clip_model, relative to the config file
  std::string gpt2_dir;    // "" = the config's text_model, relative to the config file
};

void import_upstream(const UpstreamImport& in, const std::string& out_dir);

}  // namespace clipcap
