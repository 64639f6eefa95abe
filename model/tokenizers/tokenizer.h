// One interface for every tokenizer clipcap uses: GPT-2 byte-level BPE, CLIP BPE, SentencePiece.
//
//   auto tok = clipcap::load_tokenizer("gpt2");             // picks the kind from the files present
//   std::vector<int64_t> ids = tok->encode("A dog runs .");
//   std::string text = tok->decode(ids);   // DecodeTextOptions: skip_special, clean_up_spaces
//
// Concrete kinds: model/tokenizers/bpe_tokenizer.h (GPT-2), model/tokenizers/clip_tokenizer.h, model/tokenizers/sentencepiece_tokenizer.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace clipcap {

struct DecodeTextOptions {
  bool skip_special = true;      // drop <|endoftext|> / bos / eos / pad ids from the text
  bool clean_up_spaces = false;  // HF clean_up_tokenization: " ." -> "." etc.
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids, const DecodeTextOptions& opts = {}) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int64_t bos_id() const = 0;  // -1 when the tokenizer has none
  virtual int64_t eos_id() const = 0;
  virtual int64_t pad_id() const = 0;
  virtual std::string kind() const = 0;  // "gpt2-bpe" | "clip-bpe" | "sentencepiece"
};

// HF clean_up_tokenization, literally these replacements in this order:
// " ." " ?" " !" " ," " ' " " n't" " 'm" " 's" " 've" " 're".
std::string clean_up_tokenization(std::string text);

// Chooses by the files in dir: vocab.json + merges.txt (or encoder.json + vocab.bpe) -> GPT-2 BPE,
// unless dir's config says CLIP (then CLIP BPE); tokenizer.model / spm.model -> SentencePiece.
// `dir` may also be a SentencePiece .model file. Error names dir when nothing fits.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir);

}  // namespace clipcap
