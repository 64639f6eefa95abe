// Beam search over a batch of images: K hypotheses per image, scored by their summed
// log-probability divided by length^length_penalty (length with the EOS), HF's stopping rules.
#pragma once

#include "model/decoding.h"
#include "model/logits_processors.h"

namespace clipcap {

class BeamSearch : public SearchStrategy {
 public:
  explicit BeamSearch(const DecodeOptions& opts);
  std::vector<Generated> search(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds, int64_t eos_id) override;

 private:
  DecodeOptions opts_;
  LogitsProcessors processors_;
};

}  // namespace clipcap
