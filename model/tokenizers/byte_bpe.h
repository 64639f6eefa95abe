// The byte-level BPE machinery GPT-2 and CLIP share: the bytes_to_unicode alphabet, UTF-8 helpers
// with Python's semantics, and the merge loop over a vocab.json + merges.txt pair.
//
//   clipcap::ByteBpe bpe;
//   bpe.load_vocab("gpt2/vocab.json");
//   bpe.load_merges("gpt2/merges.txt", clipcap::MergesOptions{});
//   std::vector<int64_t> ids = bpe.encode_piece(" world");   // raw UTF-8 bytes of one pre-token
//   std::string bytes = bpe.id_bytes(995);                  // " world"
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <unordered_map>
#include <vector>

namespace clipcap {

// GPT-2's bytes_to_unicode(): byte -> the UTF-8 of the code point standing for it in vocab strings.
// Printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for themselves; the other 68 map, in
// increasing byte order, to U+0100..U+0143.
const std::string& byte_to_unicode(uint8_t byte);

// One decoded code point of a UTF-8 string. Invalid bytes come out one at a time as
// codepoint == kInvalidCodepoint (length 1) so callers can still carry them as raw bytes.
constexpr uint32_t kInvalidCodepoint = 0xFFFFFFFFu;
struct Utf8Char {
  uint32_t codepoint;
  size_t offset;  // byte offset in the string
  size_t length;  // bytes
};
std::vector<Utf8Char> utf8_chars(std::string_view text);
void append_utf8(std::string& out, uint32_t codepoint);

// bytes.decode("utf-8", errors="replace"): each maximal invalid subsequence (the longest prefix
// of a would-be valid sequence, or a single bad byte) becomes one U+FFFD, exactly as CPython does.
std::string utf8_decode_replace(std::string_view bytes);

// Python str.isspace() (used by str.split()/strip()), which differs from regex's \s.
bool python_isspace(uint32_t codepoint);

struct MergesOptions {
  // GPT-2 (this project's reading): skip the first line only if it starts with "#version".
  // HF CLIPTokenizer: always skip the first line (skip_version_header_only = false).
  bool skip_version_header_only = true;
  // HF CLIPTokenizer keeps only the first 49152-256-2 merges; -1 = no limit.
  int64_t max_merges = -1;
};

// vocab.json + merges.txt, interned as symbols so a merge is an integer table lookup.
// Thread-safe after loading: the per-piece cache is mutex-protected.
class ByteBpe {
 public:
  // end_of_word: text appended to the last symbol of every piece before merging (CLIP's "</w>").
  explicit ByteBpe(std::string end_of_word = "") : end_of_word_(std::move(end_of_word)) {}

  void load_vocab(const std::string& path);  // Error names the file (and why)
  void load_merges(const std::string& path, const MergesOptions& opts);

  // BPE of one pre-tokenised piece (raw bytes, usually UTF-8). Symbols missing from the vocab
  // become unk_id (HF: encoder.get(token, encoder.get(unk_token))); without an unk, an Error.
  std::vector<int64_t> encode_piece(std::string_view piece) const;

  // The vocab string for an id (in the bytes_to_unicode alphabet) and the raw bytes it stands for.
  const std::string& id_token(int64_t id) const;
  const std::string& id_bytes(int64_t id) const;  // characters outside the alphabet stay as their UTF-8
  bool has_id(int64_t id) const;
  int64_t token_id(const std::string& vocab_token) const;  // -1 if absent

  int64_t vocab_size() const { return static_cast<int64_t>(vocab_size_); }
  int64_t max_id() const { return max_id_; }
  size_t merge_count() const { return merges_.size(); }
  const std::string& vocab_path() const { return vocab_path_; }

  int64_t unk_id = -1;

 private:
  int32_t intern(const std::string& token);
  int32_t find_symbol(const std::string& token) const;
  std::vector<int32_t> merge_symbols(std::vector<int32_t> word) const;

  std::string end_of_word_;
  std::string vocab_path_, merges_path_;
  std::unordered_map<std::string, int32_t> symbol_of_;  // vocab-alphabet string -> symbol
  std::vector<std::string> symbol_text_;
  std::vector<int64_t> symbol_id_;  // symbol -> vocab id, -1 when not in the vocab
  std::vector<int32_t> symbol_of_id_;  // vocab id -> symbol, -1 for holes
  std::vector<std::string> bytes_of_id_;  // vocab id -> raw bytes
  int32_t byte_symbol_[256] = {};       // initial symbols
  int32_t last_byte_symbol_[256] = {};  // initial symbol of a piece's last byte (with end_of_word_)
  size_t vocab_size_ = 0;
  int64_t max_id_ = -1;
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  std::unordered_map<uint64_t, Merge> merges_;  // (left symbol << 32 | right symbol) -> merge

  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

}  // namespace clipcap
