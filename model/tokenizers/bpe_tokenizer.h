// GPT-2 byte-level BPE (HF GPT2Tokenizer / OpenAI encoder.py), exact to the golden cases.
//
//   auto tok = clipcap::Gpt2BpeTokenizer::from_dir("gpt2");   // vocab.json+merges.txt or encoder.json+vocab.bpe
//   tok->encode("a <|endoftext|> b");           // HF:     [64, 220, 50256, 275]
//   tok->encode_ordinary("<|endoftext|>");      // OpenAI: the literal is plain text
//   tok->decode(ids, {/*skip_special=*/true, /*clean_up_spaces=*/true});
//
// encode()/decode() may be called from several threads at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizers/byte_bpe.h"
#include "model/tokenizers/tokenizer.h"

namespace clipcap {

// regex.findall of GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with \p{L}/\p{N} = Unicode general categories L*/N* and \s = Unicode White_Space (what the
// `regex` module and tiktoken use; NOT str.isspace(), which adds U+001C..U+001F). Returns the
// pieces as byte ranges of `text`; invalid UTF-8 bytes count as "other" characters.
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

class Gpt2BpeTokenizer : public Tokenizer {
 public:
  static constexpr const char* kEndOfText = "<|endoftext|>";

  // Either file pair; Error names the missing/bad file (and line for merges).
  static std::unique_ptr<Gpt2BpeTokenizer> from_files(const std::string& vocab_json, const std::string& merges_txt);
  static std::unique_ptr<Gpt2BpeTokenizer> from_dir(const std::string& dir);
  static bool dir_has_files(const std::string& dir);  // either file pair present

  // HF semantics: each literal "<|endoftext|>" becomes its id; the text between is encoded alone.
  std::vector<int64_t> encode(const std::string& text) const override;
  // OpenAI encoder.py semantics: special-token literals are ordinary text.
  std::vector<int64_t> encode_ordinary(std::string_view text) const;
  // Raw bytes of the tokens, UTF-8 decoded with errors="replace"; skip_special drops <|endoftext|>.
  std::string decode(const std::vector<int64_t>& ids, const DecodeTextOptions& opts = {}) const override;

  int64_t vocab_size() const override { return bpe_.max_id() + 1; }
  int64_t bos_id() const override { return end_of_text_id_; }
  int64_t eos_id() const override { return end_of_text_id_; }
  int64_t pad_id() const override { return end_of_text_id_; }  // GPT-2 has no pad; HF users set pad = eos
  std::string kind() const override { return "gpt2-bpe"; }

  const std::string& token(int64_t id) const { return bpe_.id_token(id); }  // vocab string ("Ġworld")

 private:
  Gpt2BpeTokenizer() = default;
  ByteBpe bpe_;
  int64_t end_of_text_id_ = -1;
};

}  // namespace clipcap
