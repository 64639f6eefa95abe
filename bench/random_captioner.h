// The captioner the caption and video benchmarks run: the small configuration's shapes with random
// weights from a seed: CLIP ViT-B/32 vision tower (bench/vit_b32.h), upstream ConfigS mapping
// (pooler_output 768 -> 6 layers, 16 heads, 3072, ep_len 4), GPT-2 small.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "bench/vit_b32.h"
#include "model/captioner.h"

namespace clipcap::bench {

constexpr int64_t kEos = 50256;  // GPT-2 bos = eos

// Captioner needs a tokenizer for the EOS id and the text; random weights write no real text, so a
// caption is its token ids.
class IdsOnlyTokenizer : public Tokenizer {
 public:
  std::vector<int64_t> encode(const std::string&) const override { return {}; }
  std::string decode(const std::vector<int64_t>& ids, const DecodeTextOptions&) const override {
    std::string s;
    for (int64_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
    return s;
  }
  int64_t vocab_size() const override { return 50257; }
  int64_t bos_id() const override { return kEos; }
  int64_t eos_id() const override { return kEos; }
  int64_t pad_id() const override { return kEos; }
  std::string kind() const override { return "gpt2-bpe"; }
};

inline Captioner random_captioner(torch::ScalarType dtype, uint64_t seed) {
  torch::manual_seed(seed);
  CaptionerConfig cfg;
  cfg.clip.vision = vit_b32_vision();
  const CLIPVisionConfig& vc = cfg.clip.vision;
  cfg.clip.projection_dim = 512;  // unused: the prefix is built from pooler_output
  cfg.gpt2 = GPT2Config{};        // the defaults are GPT-2 small
  cfg.mapping.input_size = vc.hidden_size;
  cfg.mapping.output_size = cfg.gpt2.n_embd;  // ep_len 4, 6 layers, 16 heads, expansion 4 by default
  CLIPVisionTransformer clip(vc);
  Mapping mapping(cfg.mapping);
  GPT2 gpt2(cfg.gpt2);
  clip->to(dtype);
  mapping->to(dtype);
  gpt2->to(dtype);  // Captioner takes its dtype from the GPT-2 weights
  return Captioner(cfg, clip, torch::nn::Linear{nullptr}, mapping, gpt2, std::make_unique<IdsOnlyTokenizer>(),
                   ImageProcessor(ImageProcessorConfig{}), "");
}

}  // namespace clipcap::bench
