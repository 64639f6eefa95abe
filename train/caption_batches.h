// Training examples (one per caption) and their batches with dynamic padding.
//
//   auto examples = clipcap::make_caption_examples(ds, "train", tokenizer, text_opts);
//   auto order = clipcap::shuffled_order(examples.size(), seed, epoch);   // same seed+epoch, same order
//   clipcap::CaptionBatch b = clipcap::collate(examples, order, 0, 64, embeddings);
//
// Each example is [caption tokens..., EOS], at most max_tokens long (EOS included, so a caption
// cut short still teaches the model to stop). A batch is padded to its longest example only.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace clipcap {

class EmbeddingDataset;
class Tokenizer;

struct CaptionTextOptions {
  bool strip = true;       // Python str.strip() of ASCII whitespace
  bool lowercase = false;  // ASCII lower-casing
  int max_tokens = 40;     // tokens per example, EOS included
};

struct CaptionExample {
  int64_t row = 0;                // the image's row in the dataset's embeddings
  std::vector<int64_t> tokens;    // caption tokens + EOS
};

struct CaptionBatch {
  torch::Tensor embeds;   // (B, Dc) float32
  torch::Tensor tokens;   // (B, T) int64, padded with 0 after the EOS
  torch::Tensor targets;  // (B, T) int64, -100 where padded (ignored by the loss)
  int64_t n_tokens = 0;   // real (non-pad) target tokens
};

std::string normalize_caption(const std::string& caption, const CaptionTextOptions& opts);

// Every caption of every image of `split`, in index order. Empty captions (after normalising)
// are skipped: they would teach the model to say nothing.
std::vector<CaptionExample> make_caption_examples(const EmbeddingDataset& ds, const std::string& split,
                                                  const Tokenizer& tokenizer, const CaptionTextOptions& opts);

// A permutation of [0, n) from (seed, epoch) alone, the same on every platform (own Fisher-Yates
// over mt19937_64), so a resumed run sees the batches the interrupted one would have.
std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed, int64_t epoch);

// Examples order[begin..end) with their embedding rows from `embeddings` (N, Dc).
CaptionBatch collate(const std::vector<CaptionExample>& examples, const std::vector<int64_t>& order, size_t begin,
                     size_t end, const torch::Tensor& embeddings);

}  // namespace clipcap
