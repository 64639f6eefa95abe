// SentencePiece models (load, encode, decode, train), through the libclipcap_spm.so plugin.
//
//   clipcap::SentencePieceTrainOptions t;
//   t.input = "captions.txt"; t.model_prefix = "run/spm"; t.vocab_size = 8000;
//   clipcap::train_sentencepiece(t);                         // writes run/spm.model, run/spm.vocab
//   clipcap::SentencePieceTokenizer tok("run/spm.model");
//   std::vector<int64_t> ids = tok.encode("A dog runs .");    // no bos/eos unless asked for
//
// The plugin is found at $CLIPCAP_SPM_PLUGIN, else next to the running executable, else in
// <exe dir>/../lib, else <exe dir>/.. (the build root, for tests/clipcap_tests); it is loaded with
// dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND) because libsentencepiece's private protobuf and
// libtorch's libprotobuf.so.32 cannot share one symbol namespace.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/tokenizers/tokenizer.h"

namespace clipcap {

struct SentencePieceTrainOptions {
  std::string input;                 // text file, one sentence per line (required)
  std::string model_prefix;          // writes <prefix>.model and <prefix>.vocab (required)
  int64_t vocab_size = 8000;         // must be reachable from the input's characters and pieces
  std::string model_type = "unigram";  // unigram | bpe | char | word
  double character_coverage = 1.0;   // 1.0 keeps every character (right for English captions)
  std::vector<std::string> user_defined_symbols;  // always kept as single pieces
  int64_t unk_id = 0;
  int64_t bos_id = 1;                // -1 disables
  int64_t eos_id = 2;
  int64_t pad_id = 3;                // a decoder batch needs one; SentencePiece's own default is -1
  bool quiet = true;                 // silence the trainer's progress log
  // Any other spm_train flag, e.g. {"input_sentence_size", "1000000"}; wins over the fields above.
  std::map<std::string, std::string> extra;
};

// Trains into <prefix>.partial.* first and renames, so a failed run never leaves a half model
// under the final names. Error (naming the input or prefix) when training fails.
void train_sentencepiece(const SentencePieceTrainOptions& opts);

struct SentencePieceOptions {
  bool add_bos = false;  // prepend bos_id() in encode()
  bool add_eos = false;  // append eos_id() in encode()
};

class SentencePieceTokenizer : public Tokenizer {
 public:
  // Error naming the file if it is missing or not a SentencePiece model, or if the plugin is absent.
  explicit SentencePieceTokenizer(const std::string& model_path, const SentencePieceOptions& opts = {});
  ~SentencePieceTokenizer() override;

  std::vector<int64_t> encode(const std::string& text) const override;
  // skip_special drops bos/eos/pad ids before decoding (SentencePiece renders control ids as "").
  std::string decode(const std::vector<int64_t>& ids, const DecodeTextOptions& opts = {}) const override;

  int64_t vocab_size() const override { return piece_size_; }
  int64_t bos_id() const override { return bos_id_; }
  int64_t eos_id() const override { return eos_id_; }
  int64_t pad_id() const override { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  std::string kind() const override { return "sentencepiece"; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  SentencePieceOptions opts_;
  void* model_ = nullptr;  // clipcap_spm_model*, owned
  int64_t piece_size_ = 0, bos_id_ = -1, eos_id_ = -1, pad_id_ = -1, unk_id_ = -1;
};

// Path of the plugin that would be loaded (Error listing the places tried if there is none).
std::string sentencepiece_plugin_path();

}  // namespace clipcap
