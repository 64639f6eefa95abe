// The CLIP-format BPE trainer: its files load in ClipBpeTokenizer, captions round-trip, the ids are
// laid out as CLIP's, and the same captions always give the same vocabulary.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "common/atomic_file.h"
#include "common/json_util.h"
#include "model/tokenizers/clip_tokenizer.h"
#include "tests/test_support.h"
#include "train/bpe_trainer.h"

using namespace clipcap;
using namespace clipcap::test;

namespace {

std::vector<std::string> captions() {
  std::vector<std::string> c;
  for (int i = 0; i < 5; ++i) {
    c.push_back("grinning face");
    c.push_back("grinning face with big eyes");
    c.push_back("Smiling face with   smiling eyes");
    c.push_back("flag: Japan");
    c.push_back("woman's hat, facing right");
    c.push_back("keycap 7");
  }
  c.push_back("piñata");
  c.push_back("日本 flag");
  return c;
}

std::unique_ptr<ClipBpeTokenizer> written(const ClipBpeVocab& vocab, const std::string& tag, int64_t context = 32) {
  std::string dir = temp_dir(tag);
  write_clip_bpe(vocab, dir, context);
  return ClipBpeTokenizer::from_dir(dir);
}

}  // namespace

TEST(BpeTrainer, SameCaptionsSameVocabularyInAnyOrder) {
  BpeTrainOptions opts;
  opts.vocab_size = 600;
  ClipBpeVocab a = train_clip_bpe(captions(), opts);
  std::vector<std::string> shuffled = captions();
  std::reverse(shuffled.begin(), shuffled.end());
  ClipBpeVocab b = train_clip_bpe(shuffled, opts);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.merges, b.merges);
  EXPECT_GT(a.merges.size(), 10u);
}

TEST(BpeTrainer, CaptionsRoundTripThroughClipTokenizer) {
  ClipBpeVocab vocab = train_clip_bpe(captions(), {});
  auto tok = written(vocab, "bpe-roundtrip");
  // Words without punctuation come back as CLIP's normalisation writes them.
  for (const char* text : {"grinning face", "Smiling face with   smiling eyes", "piñata", "a word never seen",
                                  "ÉCOLE ünïcödé"}) {
    EXPECT_EQ(tok->decode(tok->encode(text), {.skip_special = true}), ClipBpeTokenizer::normalize(text)) << text;
  }
  // CLIP's pre-tokeniser splits off punctuation and digits; decoding joins the pieces with spaces.
  EXPECT_EQ(tok->decode(tok->encode("flag: Japan"), {.skip_special = true}), "flag : japan");
  EXPECT_EQ(tok->decode(tok->encode("woman's hat, facing right"), {.skip_special = true}), "woman 's hat , facing right");
  EXPECT_EQ(tok->decode(tok->encode("日本 flag"), {.skip_special = true}), "日 本 flag");
}

TEST(BpeTrainer, FrequentWordsBecomeSingleTokens) {
  ClipBpeVocab vocab = train_clip_bpe(captions(), {});
  auto tok = written(vocab, "bpe-words");
  std::vector<int64_t> ids = tok->encode("grinning face");
  ASSERT_EQ(ids.size(), 4u);  // bos, grinning</w>, face</w>, eos
  EXPECT_EQ(vocab.tokens[ids[1]], "grinning</w>");
  EXPECT_EQ(vocab.tokens[ids[2]], "face</w>");
}

TEST(BpeTrainer, IdsAreContiguousWithClipsLayoutAndSpecialsLast) {
  BpeTrainOptions opts;
  opts.vocab_size = 560;
  ClipBpeVocab vocab = train_clip_bpe(captions(), opts);
  EXPECT_LE(vocab.size(), 560);
  std::string dir = temp_dir("bpe-layout");
  write_clip_bpe(vocab, dir, 16);
  nlohmann::json v = read_json(dir + "/vocab.json");
  ASSERT_EQ(static_cast<int64_t>(v.size()), vocab.size());
  std::set<int64_t> ids;
  for (const auto& item : v.items()) ids.insert(item.value().get<int64_t>());
  EXPECT_EQ(*ids.begin(), 0);
  EXPECT_EQ(*ids.rbegin(), vocab.size() - 1);
  EXPECT_EQ(static_cast<int64_t>(ids.size()), vocab.size());
  // CLIP's: bytes_to_unicode order, then the same with </w>, merges, then the two specials.
  EXPECT_EQ(v["!"], 0);
  EXPECT_EQ(v["!</w>"], 256);
  EXPECT_EQ(v["Ā"], 188);  // byte 0x00, the first non-printable byte
  EXPECT_EQ(v["<|startoftext|>"], vocab.size() - 2);
  EXPECT_EQ(v["<|endoftext|>"], vocab.size() - 1);

  auto tok = ClipBpeTokenizer::from_dir(dir);
  EXPECT_EQ(tok->bos_id(), vocab.bos_id());
  EXPECT_EQ(tok->eos_id(), vocab.eos_id());
  EXPECT_EQ(tok->pad_id(), vocab.eos_id());
  EXPECT_EQ(tok->vocab_size(), vocab.size());
  EXPECT_EQ(tok->context_length(), 16);
  EXPECT_TRUE(ClipBpeTokenizer::is_clip_dir(dir));
  // Every merge line of merges.txt is in force (the first line, a header, is skipped).
  std::string merges = clipcap::read_file(dir + "/merges.txt");
  EXPECT_EQ(merges.rfind("#version", 0), 0u);
  EXPECT_EQ(static_cast<size_t>(std::count(merges.begin(), merges.end(), '\n')), vocab.merges.size() + 1);
}

TEST(BpeTrainer, StopsAtMinFrequency) {
  BpeTrainOptions opts;
  opts.vocab_size = 49408;
  opts.min_frequency = 3;  // the two captions seen once add no merges of their own
  ClipBpeVocab vocab = train_clip_bpe(captions(), opts);
  EXPECT_LT(vocab.size(), 700);
  EXPECT_EQ(std::find(vocab.tokens.begin(), vocab.tokens.end(), "piñata</w>"), vocab.tokens.end());
}

TEST(BpeTrainer, RejectsImpossibleSizes) {
  BpeTrainOptions opts;
  opts.vocab_size = 100;
  expect_error([&] { train_clip_bpe(captions(), opts); }, {"vocab_size", "514", "100"});
  opts.vocab_size = 600;
  opts.min_frequency = 0;
  expect_error([&] { train_clip_bpe(captions(), opts); }, {"min_frequency"});
}
