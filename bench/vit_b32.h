// The vision tower every benchmark measures: CLIP ViT-B/32's shapes (openai/clip-vit-base-patch32:
// 224 px, patch 32, width 768, 12 heads, MLP 3072, quick_gelu), random weights.
#pragma once

#include "model/clip.h"

namespace clipcap::bench {

// layers: 12 as in ViT-B/32; training benchmarks, which read precomputed embeddings, build 1.
inline CLIPVisionConfig vit_b32_vision(int64_t layers = 12) {
  CLIPVisionConfig v;
  v.hidden_size = 768;
  v.intermediate_size = 3072;
  v.num_attention_heads = 12;
  v.num_hidden_layers = layers;
  v.hidden_act = "quick_gelu";
  v.image_size = 224;
  v.patch_size = 32;
  return v;
}

}  // namespace clipcap::bench
