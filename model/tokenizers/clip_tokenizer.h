// CLIP's BPE tokenizer, matching HF CLIPTokenizer (the slow Python one) as installed without ftfy.
//
//   auto tok = clipcap::ClipBpeTokenizer::from_dir("clip-vit-base-patch32");
//   std::vector<int64_t> ids = tok->encode("A photo of a dog.");  // [49406, ..., 49407], <= 77 ids
//   std::string text = tok->decode(ids);                           // "a photo of a dog ."
//
// What encode() does, in HF's order:
//   1. split out the literal special tokens "<|startoftext|>" / "<|endoftext|>" (HF's added-token trie);
//   2. per chunk, BasicTokenizer(do_lower_case, tokenize_chinese_chars, strip_accents=False, no
//      punctuation split): drop NUL, U+FFFD and Cc/Cf/Cs/Co/Cn characters, map \t \n \r and Zs to
//      " ", put spaces around CJK ideographs, NFC, split on str.isspace(), lower() each word
//      (full Unicode lower-casing), join with " ";
//   3. regex.findall(<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+,
//      IGNORECASE): a digit is its own piece, whitespace is dropped;
//   4. bytes_to_unicode, BPE with "</w>" appended to the last character, only the first
//      49152-256-2 merges after the (always skipped) first line of merges.txt;
//   5. bos + ids[:context_length-2] + eos (truncation=True, max_length=context_length).
// With ftfy installed HF runs ftfy.fix_text + whitespace_clean + lower() instead of step 2; for
// ordinary text the two agree.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/tokenizers/byte_bpe.h"
#include "model/tokenizers/tokenizer.h"

namespace clipcap {

struct ClipTokenizerOptions {
  int64_t context_length = 77;  // from_dir: config.json text_config.max_position_embeddings
  bool add_special = true;      // wrap in bos ... eos (and truncate to context_length)
  // Special tokens (from_dir: special_tokens_map.json / tokenizer_config.json), HF's defaults.
  std::string bos_token = "<|startoftext|>";
  std::string eos_token = "<|endoftext|>";
  std::string unk_token = "<|endoftext|>";
  std::string pad_token = "<|endoftext|>";
  // >= 0 overrides pad_token (from_dir: config.json text_config.pad_token_id when no tokenizer
  // file names a pad token).
  int64_t pad_id = -1;
};

class ClipBpeTokenizer : public Tokenizer {
 public:
  static std::unique_ptr<ClipBpeTokenizer> from_files(const std::string& vocab_json, const std::string& merges_txt,
                                                      const ClipTokenizerOptions& opts = {});
  // Reads vocab.json + merges.txt, context length from config.json, special tokens from
  // tokenizer_config.json / special_tokens_map.json when present.
  static std::unique_ptr<ClipBpeTokenizer> from_dir(const std::string& dir);
  // True when dir has vocab.json + merges.txt and says it is CLIP (config.json model_type clip /
  // clip_text_model, or tokenizer_config.json tokenizer_class CLIPTokenizer[Fast]).
  static bool is_clip_dir(const std::string& dir);

  std::vector<int64_t> encode(const std::string& text) const override;
  // Text after step 2 (BasicTokenizer) of one chunk; exposed for tests.
  static std::string normalize(const std::string& text);
  // Tokens joined, bytes decoded with errors="replace", "</w>" -> " ", stripped (HF
  // convert_tokens_to_string); skip_special drops bos/eos/pad/unk.
  std::string decode(const std::vector<int64_t>& ids, const DecodeTextOptions& opts = {}) const override;

  int64_t vocab_size() const override { return bpe_.max_id() + 1; }
  int64_t bos_id() const override { return bos_id_; }
  int64_t eos_id() const override { return eos_id_; }
  int64_t pad_id() const override { return pad_id_; }
  std::string kind() const override { return "clip-bpe"; }
  int64_t context_length() const { return opts_.context_length; }

 private:
  ClipBpeTokenizer() : bpe_("</w>") {}
  void encode_chunk(const std::string& chunk, std::vector<int64_t>& ids) const;

  ByteBpe bpe_;
  ClipTokenizerOptions opts_;
  int64_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1, unk_id_ = -1;
};

}  // namespace clipcap
