#include "model/tokenizers/byte_bpe.h"

#include <algorithm>
#include <array>
#include <limits>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_util.h"

namespace clipcap {
namespace {

// byte -> code point of GPT-2's bytes_to_unicode(), and the inverse for U+0000..U+0143.
struct ByteAlphabet {
  std::array<uint32_t, 256> codepoint{};
  std::array<std::string, 256> utf8;
  std::array<int16_t, 0x144> byte_of{};  // -1: not in the alphabet

  ByteAlphabet() {
    byte_of.fill(-1);
    uint32_t next_extra = 0x100;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      codepoint[b] = printable ? static_cast<uint32_t>(b) : next_extra++;
      append_utf8(utf8[b], codepoint[b]);
      byte_of[codepoint[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet table;
  return table;
}

// Length of the valid UTF-8 sequence at s[pos], or -(length of the maximal invalid subpart).
// The lead-byte-dependent second-byte ranges are what make CPython's error spans what they are.
int utf8_sequence(std::string_view s, size_t pos, uint32_t* codepoint) {
  auto b0 = static_cast<uint8_t>(s[pos]);
  if (b0 < 0x80) {
    *codepoint = b0;
    return 1;
  }
  int need;
  uint8_t lo = 0x80, hi = 0xBF;
  uint32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    if (pos + k >= s.size()) return -k;
    auto b = static_cast<uint8_t>(s[pos + k]);
    if (b < lo || b > hi) return -k;
    lo = 0x80, hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  *codepoint = cp;
  return need + 1;
}

std::string where_line(const std::string& path, size_t line) { return path + ": line " + std::to_string(line); }

}  // namespace

const std::string& byte_to_unicode(uint8_t byte) { return alphabet().utf8[byte]; }

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::vector<Utf8Char> utf8_chars(std::string_view text) {
  std::vector<Utf8Char> chars;
  chars.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp = 0;
    int n = utf8_sequence(text, pos, &cp);
    if (n > 0) {
      chars.push_back({cp, pos, static_cast<size_t>(n)});
      pos += n;
    } else {
      for (int k = 0; k < -n; ++k) chars.push_back({kInvalidCodepoint, pos + k, 1});
      pos += -n;
    }
  }
  return chars;
}

std::string utf8_decode_replace(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t pos = 0; pos < bytes.size();) {
    uint32_t cp = 0;
    int n = utf8_sequence(bytes, pos, &cp);
    if (n > 0) {
      out.append(bytes.data() + pos, n);
      pos += n;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      pos += -n;
    }
  }
  return out;
}

bool python_isspace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// ---- ByteBpe --------------------------------------------------------------------------------

int32_t ByteBpe::find_symbol(const std::string& token) const {
  auto it = symbol_of_.find(token);
  return it == symbol_of_.end() ? -1 : it->second;
}

int32_t ByteBpe::intern(const std::string& token) {
  auto [it, inserted] = symbol_of_.emplace(token, static_cast<int32_t>(symbol_text_.size()));
  if (inserted) {
    symbol_text_.push_back(token);
    symbol_id_.push_back(-1);
  }
  return it->second;
}

void ByteBpe::load_vocab(const std::string& path) {
  vocab_path_ = path;
  nlohmann::json j = read_json(path);
  if (!j.is_object()) throw Error(path + ": expected a JSON object mapping token strings to ids");
  symbol_of_.reserve(j.size() * 2);
  symbol_text_.reserve(j.size() * 2);
  std::vector<std::pair<int64_t, int32_t>> ids;
  ids.reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > std::numeric_limits<int32_t>::max())
      throw Error(path + ": token '" + it.key() + "': id must be a non-negative integer, got " + it.value().dump());
    int64_t id = it.value().get<int64_t>();
    int32_t sym = intern(it.key());
    symbol_id_[sym] = id;
    ids.emplace_back(id, sym);
    max_id_ = std::max(max_id_, id);
  }
  vocab_size_ = ids.size();
  // Tables are indexed by id: a vocabulary's ids are 0..n-1 (a few gaps allowed), and one stray
  // huge id would allocate a table of that size (found by tests/fuzz/fuzz_bpe_tokenizers).
  if (max_id_ >= static_cast<int64_t>(ids.size()) + 65536)
    throw Error(path + ": token ids run up to " + std::to_string(max_id_) + " for " + std::to_string(ids.size()) +
                " tokens (a vocabulary numbers its tokens 0..n-1)");
  symbol_of_id_.assign(static_cast<size_t>(max_id_ + 1), -1);
  bytes_of_id_.assign(static_cast<size_t>(max_id_ + 1), std::string());
  const ByteAlphabet& abc = alphabet();
  for (auto [id, sym] : ids) {
    symbol_of_id_[id] = sym;  // a repeated id keeps the last token, like HF's {v: k} inversion
    std::string& raw = bytes_of_id_[id];
    raw.clear();
    for (const Utf8Char& c : utf8_chars(symbol_text_[sym])) {
      if (c.codepoint < abc.byte_of.size() && abc.byte_of[c.codepoint] >= 0)
        raw += static_cast<char>(abc.byte_of[c.codepoint]);
      else
        raw.append(symbol_text_[sym], c.offset, c.length);
    }
  }
  for (int b = 0; b < 256; ++b) {
    byte_symbol_[b] = intern(abc.utf8[b]);
    last_byte_symbol_[b] = intern(abc.utf8[b] + end_of_word_);
  }
}

void ByteBpe::load_merges(const std::string& path, const MergesOptions& opts) {
  merges_path_ = path;
  std::string text = read_file(path);
  size_t begin = 0, end = text.size();
  if (!opts.skip_version_header_only) {  // HF CLIP: read().strip().split("\n")[1:]
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
    while (begin < end && space(text[begin])) ++begin;
    while (end > begin && space(text[end - 1])) --end;
  }
  size_t line_no = 0, rank = 0;
  bool first = true;
  merges_.reserve(60000);
  for (size_t pos = begin; pos < end || (pos == end && first);) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos || nl > end) nl = end;
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first) {
      first = false;
      if (!opts.skip_version_header_only || line.rfind("#version", 0) == 0) continue;
    }
    if (opts.max_merges >= 0 && static_cast<int64_t>(rank) >= opts.max_merges) break;
    std::vector<std::string> parts;
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
      if (j > i) parts.emplace_back(line.substr(i, j - i));
      i = j;
    }
    size_t this_rank = rank++;
    if (parts.empty()) continue;  // blank line (e.g. the file's last)
    if (parts.size() != 2)
      throw Error(where_line(path, line_no) + ": expected two space-separated tokens, got '" + std::string(line) + "'");
    int32_t left = intern(parts[0]);
    int32_t right = intern(parts[1]);
    int32_t merged = intern(parts[0] + parts[1]);
    // A repeated pair takes its later rank, as HF's dict(zip(merges, range(...))) does.
    merges_[(static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right)] = {static_cast<int32_t>(this_rank),
                                                                                    merged};
  }
}

std::vector<int32_t> ByteBpe::merge_symbols(std::vector<int32_t> word) const {
  std::vector<int32_t> next;
  while (word.size() >= 2) {
    const Merge* best = nullptr;
    int32_t first = -1, second = -1;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = merges_.find((static_cast<uint64_t>(word[i]) << 32) | static_cast<uint32_t>(word[i + 1]));
      if (it != merges_.end() && (!best || it->second.rank < best->rank)) {
        best = &it->second;
        first = word[i], second = word[i + 1];
      }
    }
    if (!best) break;
    // Every occurrence of the best pair, left to right, non-overlapping.
    next.clear();
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        next.push_back(best->merged);
        i += 2;
      } else {
        next.push_back(word[i++]);
      }
    }
    word.swap(next);
  }
  return word;
}

std::vector<int64_t> ByteBpe::encode_piece(std::string_view piece) const {
  if (piece.empty()) return {};
  std::string key(piece);
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
  }
  std::vector<int32_t> word(piece.size());
  for (size_t i = 0; i < piece.size(); ++i) word[i] = byte_symbol_[static_cast<uint8_t>(piece[i])];
  word.back() = last_byte_symbol_[static_cast<uint8_t>(piece.back())];
  word = merge_symbols(std::move(word));
  std::vector<int64_t> ids;
  ids.reserve(word.size());
  for (int32_t sym : word) {
    int64_t id = symbol_id_[sym];
    if (id < 0) id = unk_id;
    if (id < 0)
      throw Error(vocab_path_ + ": token '" + symbol_text_[sym] + "' is not in the vocabulary and there is no unk token");
    ids.push_back(id);
  }
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= 200000) cache_.clear();  // bounded: a long-running process sees many words
  cache_.emplace(std::move(key), ids);
  return ids;
}

bool ByteBpe::has_id(int64_t id) const {
  return id >= 0 && id <= max_id_ && symbol_of_id_[static_cast<size_t>(id)] >= 0;
}

const std::string& ByteBpe::id_token(int64_t id) const {
  if (!has_id(id)) throw Error(vocab_path_ + ": token id " + std::to_string(id) + " is not in the vocabulary");
  return symbol_text_[symbol_of_id_[static_cast<size_t>(id)]];
}

const std::string& ByteBpe::id_bytes(int64_t id) const {
  if (!has_id(id)) throw Error(vocab_path_ + ": token id " + std::to_string(id) + " is not in the vocabulary");
  return bytes_of_id_[static_cast<size_t>(id)];
}

int64_t ByteBpe::token_id(const std::string& vocab_token) const {
  int32_t sym = find_symbol(vocab_token);
  return sym < 0 ? -1 : symbol_id_[sym];
}

}  // namespace clipcap
