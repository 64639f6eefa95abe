#include "model/tokenizers/bpe_tokenizer.h"

#include <unicode/uchar.h>

#include <filesystem>

#include "common/error.h"

namespace clipcap {
namespace {

enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

CharClass classify(uint32_t cp) {
  if (cp == kInvalidCodepoint) return CharClass::kOther;
  auto c = static_cast<UChar32>(cp);
  uint32_t mask = U_GET_GC_MASK(c);
  if (mask & U_GC_L_MASK) return CharClass::kLetter;
  if (mask & U_GC_N_MASK) return CharClass::kNumber;
  if (u_isUWhiteSpace(c)) return CharClass::kSpace;
  return CharClass::kOther;
}

// Length (in chars) of a GPT-2 contraction at chars[i] ('s 't 're 've 'm 'll 'd, case-sensitive), or 0.
size_t contraction_length(const std::vector<Utf8Char>& chars, size_t i) {
  if (chars[i].codepoint != '\'' || i + 1 >= chars.size()) return 0;
  uint32_t a = chars[i + 1].codepoint;
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= chars.size()) return 0;
  uint32_t b = chars[i + 2].codepoint;
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

bool is_file(const std::string& path) { return std::filesystem::is_regular_file(path); }

}  // namespace

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  std::vector<Utf8Char> chars = utf8_chars(text);
  std::vector<CharClass> cls(chars.size());
  for (size_t i = 0; i < chars.size(); ++i) cls[i] = classify(chars[i].codepoint);
  const size_t n = chars.size();
  auto run_end = [&](size_t from, CharClass c) {
    while (from < n && cls[from] == c) ++from;
    return from;
  };

  std::vector<std::string_view> pieces;
  for (size_t i = 0; i < n;) {
    size_t end;
    if (size_t len = contraction_length(chars, i)) {
      end = i + len;
    } else if (cls[i] != CharClass::kSpace) {
      end = run_end(i, cls[i]);  // \p{L}+ | \p{N}+ | [^\s\p{L}\p{N}]+
    } else if (chars[i].codepoint == ' ' && i + 1 < n && cls[i + 1] != CharClass::kSpace) {
      end = run_end(i + 1, cls[i + 1]);  // " ?" prefix of the three runs above
    } else {
      // \s+(?!\S) backs off one char so the run's last space can prefix the next word; a lone
      // space before a word falls through to \s+.
      size_t ws_end = run_end(i, CharClass::kSpace);
      end = (ws_end == n || ws_end - i == 1) ? ws_end : ws_end - 1;
    }
    size_t from = chars[i].offset;
    size_t to = end < n ? chars[end].offset : text.size();
    pieces.emplace_back(text.substr(from, to - from));
    i = end;
  }
  return pieces;
}

std::unique_ptr<Gpt2BpeTokenizer> Gpt2BpeTokenizer::from_files(const std::string& vocab_json,
                                                                const std::string& merges_txt) {
  if (!is_file(vocab_json)) throw Error(vocab_json + ": vocabulary file not found");
  if (!is_file(merges_txt)) throw Error(merges_txt + ": merges file not found");
  std::unique_ptr<Gpt2BpeTokenizer> tok(new Gpt2BpeTokenizer());
  tok->bpe_.load_vocab(vocab_json);
  tok->bpe_.load_merges(merges_txt, MergesOptions{});
  tok->end_of_text_id_ = tok->bpe_.token_id(kEndOfText);
  tok->bpe_.unk_id = tok->end_of_text_id_;  // GPT2Tokenizer's unk_token is <|endoftext|>
  return tok;
}

bool Gpt2BpeTokenizer::dir_has_files(const std::string& dir) {
  return (is_file(dir + "/vocab.json") && is_file(dir + "/merges.txt")) ||
         (is_file(dir + "/encoder.json") && is_file(dir + "/vocab.bpe"));
}

std::unique_ptr<Gpt2BpeTokenizer> Gpt2BpeTokenizer::from_dir(const std::string& dir) {
  if (is_file(dir + "/vocab.json") || !is_file(dir + "/encoder.json"))
    return from_files(dir + "/vocab.json", dir + "/merges.txt");
  return from_files(dir + "/encoder.json", dir + "/vocab.bpe");
}

std::vector<int64_t> Gpt2BpeTokenizer::encode_ordinary(std::string_view text) const {
  std::vector<int64_t> ids;
  for (std::string_view piece : gpt2_pretokenize(text)) {
    std::vector<int64_t> piece_ids = bpe_.encode_piece(piece);
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
  }
  return ids;
}

std::vector<int64_t> Gpt2BpeTokenizer::encode(const std::string& text) const {
  if (end_of_text_id_ < 0) return encode_ordinary(text);
  const std::string_view special(kEndOfText);
  std::vector<int64_t> ids;
  std::string_view rest(text);
  for (;;) {
    size_t at = rest.find(special);
    std::vector<int64_t> chunk = encode_ordinary(rest.substr(0, at));
    ids.insert(ids.end(), chunk.begin(), chunk.end());
    if (at == std::string_view::npos) break;
    ids.push_back(end_of_text_id_);
    rest.remove_prefix(at + special.size());
  }
  return ids;
}

std::string Gpt2BpeTokenizer::decode(const std::vector<int64_t>& ids, const DecodeTextOptions& opts) const {
  std::string bytes;
  for (int64_t id : ids) {
    if (opts.skip_special && id == end_of_text_id_) continue;
    bytes += bpe_.id_bytes(id);
  }
  std::string text = utf8_decode_replace(bytes);
  return opts.clean_up_spaces ? clean_up_tokenization(std::move(text)) : text;
}

}  // namespace clipcap
