// libFuzzer target: the GPT-2 and CLIP byte-level BPE tokenizers (model/tokenizers/). The first
// byte picks what runs on the rest:
//   0  GPT-2 encode; valid UTF-8 text comes back unchanged from decode (byte-level BPE is lossless)
//   1  CLIP encode (lower-cased, whitespace-normalised: no round trip), then decode
//   2  decode of arbitrary ids (two bytes each, some out of range) by both
//   3  loading a vocabulary: the rest split at the first NUL into vocab.json and merges.txt,
//      loaded as a GPT-2 and as a CLIP tokenizer, then used
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "model/tokenizers/bpe_tokenizer.h"
#include "model/tokenizers/byte_bpe.h"
#include "model/tokenizers/clip_tokenizer.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

bool valid_utf8(const std::string& s) {
  for (const clipcap::Utf8Char& c : clipcap::utf8_chars(s))
    if (c.codepoint == clipcap::kInvalidCodepoint) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using clipcap::fuzz::refused_or_ok;
  using clipcap::fuzz::source_file;
  static const auto gpt2 = clipcap::Gpt2BpeTokenizer::from_dir(source_file("tests/fixtures/tiny-gpt2"));
  static const auto clip = clipcap::ClipBpeTokenizer::from_dir(source_file("models/emoji-clip"));
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const clipcap::DecodeTextOptions verbatim{/*skip_special=*/false, /*clean_up_spaces=*/false};
  switch (data[0] % 4) {
    case 0: {
      const std::vector<int64_t> ids = gpt2->encode(text);
      if (valid_utf8(text) && gpt2->decode(ids, verbatim) != text) std::abort();
      break;
    }
    case 1:
      (void)clip->decode(clip->encode(text));
      break;
    case 2: {
      std::vector<int64_t> ids;
      for (size_t i = 0; i + 1 < text.size(); i += 2)
        ids.push_back((static_cast<int64_t>(static_cast<uint8_t>(text[i])) << 8 | static_cast<uint8_t>(text[i + 1])) - 1000);
      refused_or_ok([&] { (void)gpt2->decode(ids); });
      refused_or_ok([&] { (void)clip->decode(ids); });
      break;
    }
    default: {
      static clipcap::fuzz::MemFile vocab("vocab.json"), merges("merges.txt");
      const size_t nul = text.find('\0');
      const std::string v = text.substr(0, nul), m = nul == std::string::npos ? "" : text.substr(nul + 1);
      vocab.set(reinterpret_cast<const uint8_t*>(v.data()), v.size());
      merges.set(reinterpret_cast<const uint8_t*>(m.data()), m.size());
      refused_or_ok([&] { (void)clipcap::Gpt2BpeTokenizer::from_files(vocab.path(), merges.path())->encode("a dog runs"); });
      refused_or_ok([&] { (void)clipcap::ClipBpeTokenizer::from_files(vocab.path(), merges.path())->encode("a dog runs"); });
    }
  }
  return 0;
}
