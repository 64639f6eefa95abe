// Learns a CLIP-format byte-level BPE vocabulary from captions, for CLIP models trained from
// scratch (no CLIP vocabulary can be downloaded here).
//
//   clipcap::BpeTrainOptions opts;  opts.vocab_size = 4096;
//   clipcap::ClipBpeVocab vocab = clipcap::train_clip_bpe(captions, opts);
//   clipcap::write_clip_bpe(vocab, "out_dir", /*context_length=*/32);  // vocab.json, merges.txt, ...
//   auto tok = clipcap::ClipBpeTokenizer::from_dir("out_dir");          // reads it back
//
// Layout, as OpenAI's CLIP vocabulary and HF CLIPTokenizer have it: ids 0..255 are the 256 byte
// characters of bytes_to_unicode (in its order), 256..511 the same with the end-of-word marker
// "</w>", then one token per learned merge in merge order, then <|startoftext|> (bos) and
// <|endoftext|> (eos, also pad and unk). merges.txt starts with a "#version: 0.2" line, which HF
// always skips.
//
// Captions are pre-tokenised exactly as ClipBpeTokenizer::encode does (it is used to do it), so
// the learned merges apply to the pieces the tokenizer will see. Merges are learned by frequency
// (pieces weighted by how often they occur): the most frequent adjacent pair is merged next, ties
// broken by the pair's text, so the result depends only on the captions and the options.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace clipcap {

struct BpeTrainOptions {
  int64_t vocab_size = 4096;  // total ids, 512 byte tokens and the 2 specials included (514..49408)
  int64_t min_frequency = 2;  // stop early when the best pair occurs fewer times than this
  void validate(const std::string& where) const;  // Error naming `where` and the field
};

struct ClipBpeVocab {
  std::vector<std::string> tokens;  // vocab strings, index = id (contiguous from 0)
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  int64_t bos_id() const { return static_cast<int64_t>(tokens.size()) - 2; }
  int64_t eos_id() const { return static_cast<int64_t>(tokens.size()) - 1; }
  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};

ClipBpeVocab train_clip_bpe(const std::vector<std::string>& texts, const BpeTrainOptions& opts = {});

// Writes vocab.json, merges.txt, special_tokens_map.json and tokenizer_config.json (model_max_length
// = context_length) into dir, each atomically.
void write_clip_bpe(const ClipBpeVocab& vocab, const std::string& dir, int64_t context_length);

}  // namespace clipcap
