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
  // The n best finished hypotheses per image, best first; the search stops for an image once n
  // have finished and no running beam can beat the n-th (with n = 1, HF's rule).
  std::vector<std::vector<Generated>> search_candidates(GPT2Impl& gpt2, const torch::Tensor& prefix_embeds,
                                                        int64_t eos_id, int64_t n) override;

 private:
  DecodeOptions opts_;
  LogitsProcessors processors_;
};

}  // namespace clipcap
