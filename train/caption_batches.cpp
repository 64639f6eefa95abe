#include "train/caption_batches.h"

#include <torch/torch.h>

#include <algorithm>
#include <random>

#include "common/error.h"
#include "data/embedding_dataset.h"
#include "model/tokenizers/tokenizer.h"

namespace clipcap {

std::string normalize_caption(const std::string& caption, const CaptionTextOptions& opts) {
  std::string s = caption;
  if (opts.strip) {
    const char* ws = " \t\n\r\f\v";
    const auto b = s.find_first_not_of(ws);
    s = b == std::string::npos ? std::string() : s.substr(b, s.find_last_not_of(ws) - b + 1);
  }
  if (opts.lowercase)
    for (char& c : s)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::vector<CaptionExample> make_caption_examples(const EmbeddingDataset& ds, const std::string& split,
                                                  const Tokenizer& tokenizer, const CaptionTextOptions& opts) {
  if (opts.max_tokens < 1) throw Error("caption examples: max_tokens must be >= 1");
  const int64_t eos = tokenizer.eos_id();
  if (eos < 0) throw Error("caption examples: the tokenizer has no end-of-text token to teach the model to stop");
  std::vector<CaptionExample> out;
  for (int64_t row : ds.rows(split)) {
    for (const auto& caption : ds.entries()[row].captions) {
      std::string text = normalize_caption(caption, opts);
      if (text.empty()) continue;
      CaptionExample ex;
      ex.row = row;
      ex.tokens = tokenizer.encode(text);
      if (static_cast<int64_t>(ex.tokens.size()) > opts.max_tokens - 1) ex.tokens.resize(opts.max_tokens - 1);
      ex.tokens.push_back(eos);
      out.push_back(std::move(ex));
    }
  }
  return out;
}

std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) {
    // Rejection sampling instead of std::uniform_int_distribution, whose output differs by library.
    const uint64_t range = static_cast<uint64_t>(i) + 1, limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t r;
    do r = rng();
    while (r >= limit);
    std::swap(order[i], order[static_cast<int64_t>(r % range)]);
  }
  return order;
}

CaptionBatch collate(const std::vector<CaptionExample>& examples, const std::vector<int64_t>& order, size_t begin,
                     size_t end, const torch::Tensor& embeddings) {
  if (begin >= end || end > order.size()) throw Error("collate: empty or out-of-range batch");
  const int64_t B = static_cast<int64_t>(end - begin);
  size_t T = 0;
  for (size_t i = begin; i < end; ++i) T = std::max(T, examples[order[i]].tokens.size());
  CaptionBatch b;
  b.tokens = torch::zeros({B, static_cast<int64_t>(T)}, torch::kLong);             // (B, T)
  b.targets = torch::full({B, static_cast<int64_t>(T)}, -100, torch::kLong);       // (B, T)
  std::vector<int64_t> rows(B);
  auto tok = b.tokens.accessor<int64_t, 2>();
  auto tgt = b.targets.accessor<int64_t, 2>();
  for (int64_t i = 0; i < B; ++i) {
    const CaptionExample& ex = examples[order[begin + i]];
    rows[i] = ex.row;
    for (size_t t = 0; t < ex.tokens.size(); ++t) tok[i][t] = tgt[i][t] = ex.tokens[t];
    b.n_tokens += static_cast<int64_t>(ex.tokens.size());
  }
  b.embeds = embeddings.index_select(0, torch::tensor(rows, torch::kLong)).to(torch::kFloat32);  // (B, Dc)
  return b;
}

}  // namespace clipcap
