#include "model/tokenizers/tokenizer.h"

#include <filesystem>

#include "common/error.h"
#include "model/tokenizers/bpe_tokenizer.h"
#include "model/tokenizers/clip_tokenizer.h"
#include "model/tokenizers/sentencepiece_tokenizer.h"

namespace clipcap {
namespace {

// Python str.replace: every non-overlapping occurrence, scanning left to right.
void replace_all(std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t at; (at = s.find(from, pos)) != std::string::npos; pos = at + from.size()) {
    out.append(s, pos, at - pos);
    out += to;
  }
  out.append(s, pos, std::string::npos);
  s.swap(out);
}

}  // namespace

std::string clean_up_tokenization(std::string text) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},  {" ?", "?"},     {" !", "!"},     {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
  };
  for (const auto& [from, to] : kRules) replace_all(text, from, to);
  return text;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir) {
  namespace fs = std::filesystem;
  if (fs::is_regular_file(dir) && fs::path(dir).extension() == ".model")
    return std::make_unique<SentencePieceTokenizer>(dir);
  if (!fs::is_directory(dir)) throw Error(dir + ": tokenizer directory not found");
  if (ClipBpeTokenizer::is_clip_dir(dir)) return ClipBpeTokenizer::from_dir(dir);
  if (Gpt2BpeTokenizer::dir_has_files(dir)) return Gpt2BpeTokenizer::from_dir(dir);
  for (const char* name : {"tokenizer.model", "spm.model"})
    if (fs::is_regular_file(dir + "/" + name)) return std::make_unique<SentencePieceTokenizer>(dir + "/" + name);
  throw Error(dir + ": no tokenizer files (expected vocab.json + merges.txt, encoder.json + vocab.bpe, "
                    "tokenizer.model or spm.model)");
}

}  // namespace clipcap
