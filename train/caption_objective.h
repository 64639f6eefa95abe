// The captioning objective, done right (LEGACY.md, defects 2 to 5 are what it avoids):
// GPT-2 reads [prefix(image), caption tokens without the last] as inputs_embeds (wpe added once,
// inside GPT-2; no BOS); the last prefix slot predicts the first caption token, every caption
// token predicts the next, the final one predicts EOS; cross-entropy on the logits, padding
// ignored; each image is mapped on its own (Mapping::forward).
//
//   torch::Tensor loss = clipcap::caption_loss(captioner, batch);        // scalar, mean per token
//   torch::Tensor per_token = clipcap::caption_token_losses(captioner, batch);  // (B, T), 0 at pads
#pragma once

#include <torch/types.h>

namespace clipcap {

class Captioner;
struct CaptionBatch;

torch::Tensor caption_token_losses(Captioner& captioner, const CaptionBatch& batch);  // (B, T) float32
torch::Tensor caption_loss(Captioner& captioner, const CaptionBatch& batch);          // () float32

}  // namespace clipcap
