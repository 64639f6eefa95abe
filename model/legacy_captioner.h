// Upstream's (jmisilo/clip-gpt-captioning) captioning algorithm, reproduced exactly, for models
// imported with import_upstream ("legacy": true). Not a way to caption well: a way to give the
// same captions its released checkpoints give (LEGACY.md, "The legacy algorithm"; tests/fixtures/README.md 6.3).
//
//   clipcap::LegacyTrace trace;                                  // optional: intermediate tensors
//   auto tokens = clipcap::legacy_generate(*gpt2, prefix, 40, &trace);   // prefix (ep_len, D)
//   std::string caption = clipcap::legacy_caption_text(tokenizer, tokens);
//
// The algorithm: start = [wte(BOS), prefix rows]; each step x = start ++ wte(tokens so far), then
// x += wpe in place, then GPT-2 (which adds wpe again), argmax of the last row, stop at EOS or
// max_len. At step 0 x IS start, so the in-place add changes start for every later step (the
// released captions depend on this aliasing). No KV cache: the start rows change between step 0
// and step 1, and upstream recomputed everything each step.
// Text: decode(tokens minus the last one) with HF's clean_up_tokenization, Python strip(),
// first code point upper-cased (full case mapping). Upstream crashed on an immediate EOS (empty
// text); we return "".
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "model/gpt2.h"
#include "model/mapping.h"
#include "model/tokenizers/tokenizer.h"

namespace clipcap {

struct LegacyTrace {  // what tests compare with the fixtures
  torch::Tensor start_emb;             // (1+E, D) before any position embedding
  torch::Tensor step0_inputs_embeds;   // (1+E, D) what GPT-2 receives at step 0
  torch::Tensor step1_inputs_embeds;   // (2+E, D) at step 1 (undefined if it stopped at step 0)
  torch::Tensor step0_logits_last;     // (V) last-row logits at step 0
  std::vector<double> step_logsumexp;  // logsumexp of the last-row logits, per step
};

// prefix: (E, D), the mapping output of one image. Returns upstream's token list: the final EOS
// is included when it stopped on EOS. BOS/EOS ids are GPT-2's config ones (50256).
std::vector<int64_t> legacy_generate(GPT2Impl& gpt2, const torch::Tensor& prefix, int max_len,
                                     LegacyTrace* trace = nullptr);

// decode(tokens[:-1]) + clean_up_tokenization, strip(), first code point upper-cased.
std::string legacy_caption_text(const Tokenizer& tokenizer, const std::vector<int64_t>& tokens);

// Upstream's Net.train_forward loss with dropout off (fixtures README 6.4): the N embeddings go
// through the mapping as ONE sequence, no BOS, wpe added by hand and again by GPT-2, and
// CrossEntropy over softmax outputs (double softmax) counting padding. img_emb (N, D),
// trg_cap and att_mask (N, L) int64. Returns a scalar.
torch::Tensor legacy_train_loss(MappingImpl& mapping, GPT2Impl& gpt2, const torch::Tensor& img_emb,
                                const torch::Tensor& trg_cap, const torch::Tensor& att_mask);

// Python's str.strip(): removes leading/trailing code points for which str.isspace() is true.
std::string python_strip(const std::string& utf8);
// Python's s[0].upper() + s[1:]: full Unicode case mapping of the first code point ("ß" -> "SS").
std::string upper_first_code_point(const std::string& utf8);

}  // namespace clipcap
