#include "model/tokenizers/clip_tokenizer.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <filesystem>

#include "common/error.h"
#include "common/json_util.h"

namespace clipcap {
namespace {

constexpr const char* kStartOfText = "<|startoftext|>";
constexpr const char* kEndOfText = "<|endoftext|>";
// HF: merges_handle.read().strip().split("\n")[1 : 49152 - 256 - 2 + 1]
constexpr int64_t kClipMaxMerges = 49152 - 256 - 2;

bool is_file(const std::string& path) { return std::filesystem::is_regular_file(path); }

// HF BasicTokenizer._is_chinese_char: the CJK Unified Ideograph blocks, not all of CJK.
bool is_cjk_ideograph(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

uint32_t gc_mask(uint32_t cp) { return U_GET_GC_MASK(static_cast<UChar32>(cp)); }

std::string lower_utf8(const std::string& word) {
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(word);
  u.toLower(icu::Locale::getRoot());  // full mappings and Final_Sigma, like Python's str.lower()
  std::string out;
  u.toUTF8String(out);
  return out;
}

std::string nfc_utf8(const std::string& text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) throw Error(std::string("ICU: cannot load NFC data: ") + u_errorName(status));
  icu::UnicodeString normalized = nfc->normalize(icu::UnicodeString::fromUTF8(text), status);
  if (U_FAILURE(status)) throw Error(std::string("ICU: NFC normalisation failed: ") + u_errorName(status));
  std::string out;
  normalized.toUTF8String(out);
  return out;
}

// Python str.strip() on UTF-8.
std::string python_strip(const std::string& text) {
  std::vector<Utf8Char> chars = utf8_chars(text);
  size_t b = 0, e = chars.size();
  while (b < e && python_isspace(chars[b].codepoint)) ++b;
  while (e > b && python_isspace(chars[e - 1].codepoint)) --e;
  if (b == e) return "";
  size_t from = chars[b].offset, to = chars[e - 1].offset + chars[e - 1].length;
  return text.substr(from, to - from);
}

bool ascii_iequal_at(const std::vector<Utf8Char>& chars, size_t i, const char* lit) {
  for (size_t k = 0; lit[k]; ++k) {
    if (i + k >= chars.size()) return false;
    uint32_t c = chars[i + k].codepoint;
    if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
    if (c != static_cast<unsigned char>(lit[k])) return false;
  }
  return true;
}

// Length of 's 't 're 've 'm 'll 'd at i (IGNORECASE), or 0.
size_t clip_contraction_length(const std::vector<Utf8Char>& chars, size_t i) {
  if (chars[i].codepoint != '\'') return 0;
  for (const char* c : {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"})
    if (ascii_iequal_at(chars, i, c)) return std::char_traits<char>::length(c);
  return 0;
}

// Read a special token from tokenizer_config.json / special_tokens_map.json: "x" or {"content": "x"}.
std::string special_token(const nlohmann::json& j, const char* key, const std::string& fallback) {
  if (!j.is_object() || !j.contains(key)) return fallback;
  const nlohmann::json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return fallback;
}

}  // namespace

std::string ClipBpeTokenizer::normalize(const std::string& text) {
  std::string cleaned;
  cleaned.reserve(text.size());
  for (const Utf8Char& c : utf8_chars(text)) {
    uint32_t cp = c.codepoint;
    if (cp == kInvalidCodepoint || cp == 0 || cp == 0xFFFD) continue;  // Python would see U+FFFD here
    bool tab_nl_cr = cp == '\t' || cp == '\n' || cp == '\r';
    if (!tab_nl_cr && (gc_mask(cp) & U_GC_C_MASK)) continue;  // _is_control
    if (tab_nl_cr || cp == ' ' || (gc_mask(cp) & U_GC_ZS_MASK)) {  // _is_whitespace
      cleaned += ' ';
    } else if (is_cjk_ideograph(cp)) {
      cleaned += ' ';
      cleaned.append(text, c.offset, c.length);
      cleaned += ' ';
    } else {
      cleaned.append(text, c.offset, c.length);
    }
  }
  std::string nfc = nfc_utf8(cleaned);
  // whitespace_tokenize (str.split()), lower() per word, " ".join
  std::string out;
  std::vector<Utf8Char> chars = utf8_chars(nfc);
  for (size_t i = 0; i < chars.size();) {
    if (python_isspace(chars[i].codepoint)) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < chars.size() && !python_isspace(chars[j].codepoint)) ++j;
    size_t to = j < chars.size() ? chars[j].offset : nfc.size();
    if (!out.empty()) out += ' ';
    out += lower_utf8(nfc.substr(chars[i].offset, to - chars[i].offset));
    i = j;
  }
  return out;
}

void ClipBpeTokenizer::encode_chunk(const std::string& chunk, std::vector<int64_t>& ids) const {
  std::string text = normalize(chunk);
  std::vector<Utf8Char> chars = utf8_chars(text);
  const size_t n = chars.size();
  auto mask_at = [&](size_t i) { return gc_mask(chars[i].codepoint); };
  auto is_space = [&](size_t i) { return u_isUWhiteSpace(static_cast<UChar32>(chars[i].codepoint)) != 0; };
  for (size_t i = 0; i < n;) {
    size_t end;
    bool special = false;
    if (ascii_iequal_at(chars, i, kStartOfText)) {
      end = i + std::char_traits<char>::length(kStartOfText), special = true;
    } else if (ascii_iequal_at(chars, i, kEndOfText)) {
      end = i + std::char_traits<char>::length(kEndOfText), special = true;
    } else if (size_t len = clip_contraction_length(chars, i)) {
      end = i + len;
    } else if (mask_at(i) & U_GC_L_MASK) {
      end = i + 1;
      while (end < n && (mask_at(end) & U_GC_L_MASK)) ++end;
    } else if (mask_at(i) & U_GC_N_MASK) {
      end = i + 1;  // [\p{N}]: one digit per piece
    } else if (is_space(i)) {
      ++i;  // findall skips what no alternative matches
      continue;
    } else {
      end = i + 1;
      while (end < n && !(mask_at(end) & (U_GC_L_MASK | U_GC_N_MASK)) && !is_space(end)) ++end;
    }
    size_t from = chars[i].offset, to = end < n ? chars[end].offset : text.size();
    std::string piece = text.substr(from, to - from);
    if (special) {  // HF's bpe cache maps the two literals to themselves (no </w>)
      int64_t id = bpe_.token_id(piece);
      ids.push_back(id >= 0 ? id : unk_id_);
    } else {
      std::vector<int64_t> piece_ids = bpe_.encode_piece(piece);
      ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
    }
    i = end;
  }
}

std::vector<int64_t> ClipBpeTokenizer::encode(const std::string& text) const {
  // HF's added-token trie: the literal special tokens are cut out first (longest match wins).
  std::vector<std::string> specials;
  for (const std::string& s : {opts_.bos_token, opts_.eos_token, opts_.unk_token, opts_.pad_token})
    if (!s.empty() && std::find(specials.begin(), specials.end(), s) == specials.end()) specials.push_back(s);
  std::vector<int64_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t best = std::string::npos;
    const std::string* which = nullptr;
    for (const std::string& s : specials) {
      size_t at = text.find(s, pos);
      if (at != std::string::npos && (at < best || (at == best && s.size() > which->size()))) best = at, which = &s;
    }
    encode_chunk(text.substr(pos, best == std::string::npos ? std::string::npos : best - pos), ids);
    if (!which) break;
    int64_t id = bpe_.token_id(*which);
    ids.push_back(id >= 0 ? id : unk_id_);
    pos = best + which->size();
  }
  if (!opts_.add_special) return ids;
  int64_t keep = std::max<int64_t>(0, opts_.context_length - 2);
  if (static_cast<int64_t>(ids.size()) > keep) ids.resize(static_cast<size_t>(keep));
  ids.insert(ids.begin(), bos_id_);
  ids.push_back(eos_id_);
  return ids;
}

std::string ClipBpeTokenizer::decode(const std::vector<int64_t>& ids, const DecodeTextOptions& opts) const {
  std::string bytes;
  for (int64_t id : ids) {
    if (opts.skip_special && (id == bos_id_ || id == eos_id_ || id == pad_id_ || id == unk_id_)) continue;
    bytes += bpe_.id_bytes(id);
  }
  std::string text = utf8_decode_replace(bytes);
  std::string spaced;
  spaced.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 4, "</w>") == 0) {
      spaced += ' ';
      i += 4;
    } else {
      spaced += text[i++];
    }
  }
  text = python_strip(spaced);
  return opts.clean_up_spaces ? clean_up_tokenization(std::move(text)) : text;
}

std::unique_ptr<ClipBpeTokenizer> ClipBpeTokenizer::from_files(const std::string& vocab_json,
                                                               const std::string& merges_txt,
                                                               const ClipTokenizerOptions& opts) {
  if (!is_file(vocab_json)) throw Error(vocab_json + ": vocabulary file not found");
  if (!is_file(merges_txt)) throw Error(merges_txt + ": merges file not found");
  if (opts.context_length < 2)
    throw Error(vocab_json + ": context length " + std::to_string(opts.context_length) + " leaves no room for bos+eos");
  std::unique_ptr<ClipBpeTokenizer> tok(new ClipBpeTokenizer());
  tok->opts_ = opts;
  tok->bpe_.load_vocab(vocab_json);
  MergesOptions mo;
  mo.skip_version_header_only = false;
  mo.max_merges = kClipMaxMerges;
  tok->bpe_.load_merges(merges_txt, mo);
  auto require = [&](const std::string& token, const char* role) {
    int64_t id = tok->bpe_.token_id(token);
    if (id < 0) throw Error(vocab_json + ": " + role + " token '" + token + "' is not in the vocabulary");
    return id;
  };
  tok->unk_id_ = require(opts.unk_token, "unk");
  tok->bpe_.unk_id = tok->unk_id_;
  tok->bos_id_ = require(opts.bos_token, "bos");
  tok->eos_id_ = require(opts.eos_token, "eos");
  tok->pad_id_ = opts.pad_id >= 0 ? opts.pad_id : require(opts.pad_token, "pad");
  if (!tok->bpe_.has_id(tok->pad_id_))
    throw Error(vocab_json + ": pad id " + std::to_string(tok->pad_id_) + " is not in the vocabulary");
  return tok;
}

bool ClipBpeTokenizer::is_clip_dir(const std::string& dir) {
  if (!is_file(dir + "/vocab.json") || !is_file(dir + "/merges.txt")) return false;
  if (is_file(dir + "/tokenizer_config.json")) {
    nlohmann::json tc = read_json(dir + "/tokenizer_config.json");
    std::string cls = json_value<std::string>(tc, "tokenizer_class", "", dir + "/tokenizer_config.json");
    if (cls.rfind("CLIPTokenizer", 0) == 0) return true;
  }
  if (is_file(dir + "/config.json")) {
    nlohmann::json c = read_json(dir + "/config.json");
    std::string type = json_value<std::string>(c, "model_type", "", dir + "/config.json");
    if (type == "clip" || type == "clip_text_model") return true;
  }
  return false;
}

std::unique_ptr<ClipBpeTokenizer> ClipBpeTokenizer::from_dir(const std::string& dir) {
  ClipTokenizerOptions opts;
  bool pad_named = false;
  for (const char* name : {"tokenizer_config.json", "special_tokens_map.json"}) {
    std::string path = dir + "/" + name;
    if (!is_file(path)) continue;
    nlohmann::json j = read_json(path);
    opts.bos_token = special_token(j, "bos_token", opts.bos_token);
    opts.eos_token = special_token(j, "eos_token", opts.eos_token);
    opts.unk_token = special_token(j, "unk_token", opts.unk_token);
    pad_named = pad_named || special_token(j, "pad_token", "") != "";
    opts.pad_token = special_token(j, "pad_token", opts.pad_token);
    if (j.is_object() && j.contains("model_max_length") && j["model_max_length"].is_number_integer()) {
      int64_t m = j["model_max_length"].get<int64_t>();
      if (m >= 2 && m < 100000) opts.context_length = m;  // "no limit" is stored as a huge number
    }
  }
  std::string config = dir + "/config.json";
  if (is_file(config)) {
    nlohmann::json c = read_json(config);
    bool nested = c.is_object() && c.contains("text_config") && c["text_config"].is_object();
    const nlohmann::json& text = nested ? c["text_config"] : c;
    opts.context_length = json_value<int64_t>(text, "max_position_embeddings", opts.context_length, config);
    if (!pad_named) opts.pad_id = json_value<int64_t>(text, "pad_token_id", -1, config);
  }
  return from_files(dir + "/vocab.json", dir + "/merges.txt", opts);
}

}  // namespace clipcap
