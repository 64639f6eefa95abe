#include "train/bpe_trainer.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <queue>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_util.h"
#include "model/tokenizers/byte_bpe.h"
#include "model/tokenizers/clip_tokenizer.h"

namespace fs = std::filesystem;

namespace clipcap {
namespace {

constexpr const char* kBos = "<|startoftext|>";
constexpr const char* kEos = "<|endoftext|>";
constexpr const char* kEndOfWord = "</w>";
constexpr int64_t kBaseTokens = 512;  // 256 bytes, 256 bytes + "</w>"
// HF CLIPTokenizer reads only the first 49152 - 256 - 2 merges.
constexpr int64_t kMaxVocab = kBaseTokens + (49152 - 256 - 2) + 2;

// bytes_to_unicode().values() in order: the printable bytes keep their code point and come first,
// the others follow from U+0100 up, so the order is simply by code point.
std::vector<std::string> base_tokens() {
  std::vector<std::pair<uint32_t, std::string>> chars;
  for (int b = 0; b < 256; ++b) {
    const std::string& s = byte_to_unicode(static_cast<uint8_t>(b));
    chars.emplace_back(utf8_chars(s)[0].codepoint, s);
  }
  std::sort(chars.begin(), chars.end());
  std::vector<std::string> tokens;
  for (const auto& c : chars) tokens.push_back(c.second);
  for (const auto& c : chars) tokens.push_back(c.second + kEndOfWord);
  return tokens;
}

nlohmann::json vocab_json(const std::vector<std::string>& tokens) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < tokens.size(); ++i) j[tokens[i]] = static_cast<int64_t>(i);
  return j;
}

std::string merges_text(const std::vector<std::pair<std::string, std::string>>& merges) {
  std::string text = "#version: 0.2\n";
  for (const auto& m : merges) text += m.first + " " + m.second + "\n";
  return text;
}

// A private temporary directory, removed with its contents on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "clipcap-bpe-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw Error(pattern + ": cannot create a temporary directory");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The pieces ClipBpeTokenizer would run BPE on, with their counts: a byte-level tokenizer (no
// merges) encodes each caption, and a piece ends at each token carrying "</w>" (ids 256..511).
std::map<std::vector<int32_t>, int64_t> count_pieces(const std::vector<std::string>& texts,
                                                     const std::vector<std::string>& base) {
  ScratchDir scratch;
  std::vector<std::string> tokens = base;
  tokens.push_back(kBos);
  tokens.push_back(kEos);
  write_file_atomic(scratch.path() + "/vocab.json", vocab_json(tokens).dump());
  write_file_atomic(scratch.path() + "/merges.txt", merges_text({}));
  ClipTokenizerOptions opts;
  opts.add_special = false;
  auto tok = ClipBpeTokenizer::from_files(scratch.path() + "/vocab.json", scratch.path() + "/merges.txt", opts);

  std::map<std::vector<int32_t>, int64_t> pieces;
  std::vector<int32_t> piece;
  for (const std::string& text : texts) {
    for (int64_t id : tok->encode(text)) {
      if (id >= kBaseTokens) continue;  // a literal special token in the caption
      piece.push_back(static_cast<int32_t>(id));
      if (id >= kBaseTokens / 2) {  // carries "</w>": the piece is complete
        ++pieces[piece];
        piece.clear();
      }
    }
    piece.clear();
  }
  return pieces;
}

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }
int32_t left_of(uint64_t key) { return static_cast<int32_t>(key >> 32); }
int32_t right_of(uint64_t key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

// Incremental BPE learning: pair counts are updated only in the pieces a merge touches; the next
// merge comes from a max-heap with stale entries skipped.
class BpeLearner {
 public:
  BpeLearner(std::vector<std::string> symbols, const std::map<std::vector<int32_t>, int64_t>& pieces)
      : text_(std::move(symbols)) {
    for (size_t i = 0; i < text_.size(); ++i) id_of_[text_[i]] = static_cast<int32_t>(i);
    for (const auto& [syms, count] : pieces) words_.push_back({syms, count});
    for (size_t w = 0; w < words_.size(); ++w) add_pairs(static_cast<int32_t>(w), +1);
    for (const auto& [key, count] : count_) push(key);
  }

  // The next merge (left, right) and its count; count 0 when nothing is left to merge.
  std::pair<uint64_t, int64_t> best() {
    while (!heap_.empty()) {
      Entry e = heap_.top();
      auto it = count_.find(e.key);
      int64_t now = it == count_.end() ? 0 : it->second;
      if (now == e.count && now > 0) return {e.key, now};
      heap_.pop();  // stale
    }
    return {0, 0};
  }

  // Merges every occurrence of the pair; returns the symbol of the merged text (new or existing).
  int32_t merge(uint64_t key) {
    const int32_t a = left_of(key), b = right_of(key);
    const std::string merged = text_[a] + text_[b];
    int32_t c;
    auto found = id_of_.find(merged);
    if (found != id_of_.end()) {
      c = found->second;
    } else {
      c = static_cast<int32_t>(text_.size());
      text_.push_back(merged);
      id_of_[merged] = c;
    }
    std::set<int32_t> touched = words_with_[key];  // sorted: the update order is fixed
    changed_.clear();
    for (int32_t w : touched) {
      std::vector<int32_t>& syms = words_[w].syms;
      bool has = false;
      for (size_t i = 0; i + 1 < syms.size() && !has; ++i) has = syms[i] == a && syms[i + 1] == b;
      if (!has) continue;
      add_pairs(w, -1);
      std::vector<int32_t> out;
      out.reserve(syms.size());
      for (size_t i = 0; i < syms.size();) {
        if (i + 1 < syms.size() && syms[i] == a && syms[i + 1] == b) {
          out.push_back(c);
          i += 2;
        } else {
          out.push_back(syms[i++]);
        }
      }
      syms = std::move(out);
      add_pairs(w, +1);
    }
    for (uint64_t k : changed_) push(k);
    return c;
  }

  const std::string& text(int32_t symbol) const { return text_[symbol]; }
  size_t symbol_count() const { return text_.size(); }

 private:
  struct Word {
    std::vector<int32_t> syms;
    int64_t count;
  };
  struct Entry {
    int64_t count;
    uint64_t key;
  };
  // Heap order: higher count first; on ties the smaller (left, right) text first.
  struct Worse {
    const BpeLearner* self;
    bool operator()(const Entry& x, const Entry& y) const {
      if (x.count != y.count) return x.count < y.count;
      const auto& t = self->text_;
      const std::string &xa = t[left_of(x.key)], &ya = t[left_of(y.key)];
      if (xa != ya) return xa > ya;
      return t[right_of(x.key)] > t[right_of(y.key)];
    }
  };

  void add_pairs(int32_t w, int sign) {
    const Word& word = words_[w];
    for (size_t i = 0; i + 1 < word.syms.size(); ++i) {
      uint64_t k = pair_key(word.syms[i], word.syms[i + 1]);
      count_[k] += sign * word.count;
      if (sign > 0) words_with_[k].insert(w);
      changed_.insert(k);
    }
  }

  void push(uint64_t key) {
    auto it = count_.find(key);
    if (it != count_.end() && it->second > 0) heap_.push({it->second, key});
  }

  std::vector<std::string> text_;
  std::unordered_map<std::string, int32_t> id_of_;
  std::vector<Word> words_;
  std::unordered_map<uint64_t, int64_t> count_;
  std::unordered_map<uint64_t, std::set<int32_t>> words_with_;  // may list words that lost the pair
  std::set<uint64_t> changed_;
  std::priority_queue<Entry, std::vector<Entry>, Worse> heap_{Worse{this}};
};

}  // namespace

void BpeTrainOptions::validate(const std::string& where) const {
  if (vocab_size < kBaseTokens + 2 || vocab_size > kMaxVocab)
    throw Error(where + ": field 'vocab_size' must be in [" + std::to_string(kBaseTokens + 2) + ", " +
                std::to_string(kMaxVocab) + "] (512 byte tokens + merges + 2 specials), got " +
                std::to_string(vocab_size));
  if (min_frequency < 1) throw Error(where + ": field 'min_frequency' must be >= 1, got " + std::to_string(min_frequency));
}

ClipBpeVocab train_clip_bpe(const std::vector<std::string>& texts, const BpeTrainOptions& opts) {
  opts.validate("BPE options");
  ClipBpeVocab vocab;
  vocab.tokens = base_tokens();
  BpeLearner learner(vocab.tokens, count_pieces(texts, vocab.tokens));
  const size_t target = static_cast<size_t>(opts.vocab_size - 2);  // room for bos + eos
  while (vocab.tokens.size() < target) {
    auto [key, count] = learner.best();
    if (count < opts.min_frequency) break;
    const size_t before = learner.symbol_count();
    vocab.merges.emplace_back(learner.text(left_of(key)), learner.text(right_of(key)));
    int32_t merged = learner.merge(key);
    // A text reachable by two different merges gets one id (vocab.json is a map).
    if (learner.symbol_count() > before) vocab.tokens.push_back(learner.text(merged));
  }
  vocab.tokens.push_back(kBos);
  vocab.tokens.push_back(kEos);
  return vocab;
}

void write_clip_bpe(const ClipBpeVocab& vocab, const std::string& dir, int64_t context_length) {
  write_file_atomic(dir + "/vocab.json", vocab_json(vocab.tokens).dump() + "\n");
  write_file_atomic(dir + "/merges.txt", merges_text(vocab.merges));
  write_json_atomic(dir + "/special_tokens_map.json",
                    {{"bos_token", kBos}, {"eos_token", kEos}, {"unk_token", kEos}, {"pad_token", kEos}});
  write_json_atomic(dir + "/tokenizer_config.json", {{"tokenizer_class", "CLIPTokenizer"},
                                                     {"model_max_length", context_length},
                                                     {"do_lower_case", true},
                                                     {"bos_token", kBos},
                                                     {"eos_token", kEos},
                                                     {"unk_token", kEos},
                                                     {"pad_token", kEos},
                                                     {"errors", "replace"}});
}

}  // namespace clipcap
