// SentencePiece through the dlopen'ed plugin: train a tiny model on caption lines, round-trip
// text, special ids, and bad model files. Running at all proves the plugin's protobuf and
// libtorch's coexist in one process.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "model/tokenizers/sentencepiece_tokenizer.h"
#include "model/tokenizers/tokenizer.h"
#include "tests/test_support.h"

namespace clipcap {
namespace {

using test::temp_dir;
namespace fs = std::filesystem;

using ::clipcap::test::error_message;

const char* kCaptions[] = {
    "A dog runs across the grass .",
    "Two young guys with shaggy hair look at their hands while hanging out in the yard .",
    "A man in a blue shirt is standing on a ladder cleaning windows .",
    "Two men are at the stove preparing food .",
    "A child in a pink dress is climbing up a set of stairs in an entry way .",
    "A little girl climbing into a wooden playhouse .",
    "A black dog and a spotted dog are fighting .",
    "A man lays on a bench while his dog sits by him .",
    "A woman is walking across the street eating a banana .",
    "Several people are standing in front of a building .",
    "A boy jumps into the water at the beach .",
    "Two dogs play together in the snow .",
    "A girl is sitting on a swing in the park .",
    "A group of people sit at a table in a restaurant .",
    "A man rides a bicycle down a dirt road .",
    "The brown dog is running through the tall grass .",
    "A woman in a red coat walks her dog .",
    "Children are playing soccer on a green field .",
    "A cat sleeps on the window sill .",
    "An old man reads a newspaper on a park bench .",
    "A young boy is holding a fishing pole by the lake .",
    "Three people are hiking up a rocky mountain .",
    "A surfer rides a large wave in the ocean .",
    "A baby is laughing in a high chair .",
    "Two women are talking outside a coffee shop .",
    "A man is playing the guitar on a street corner .",
    "A white dog jumps to catch a frisbee .",
    "People are waiting at a bus stop in the rain .",
    "A chef is cooking in a busy kitchen .",
    "A horse is running in a field of flowers .",
};

// One model for the whole suite: <tmp>/spm.model, trained once.
const std::string& trained_model() {
  static const std::string path = [] {
    std::string dir = temp_dir("spm");
    std::string text;
    for (const char* line : kCaptions) text += std::string(line) + "\n";
    write_file_atomic(dir + "/captions.txt", text);
    SentencePieceTrainOptions opts;
    opts.input = dir + "/captions.txt";
    opts.model_prefix = dir + "/spm";
    opts.vocab_size = 60;
    opts.model_type = "unigram";
    opts.user_defined_symbols = {"<sep>"};
    train_sentencepiece(opts);
    return dir + "/spm.model";
  }();
  return path;
}

TEST(SentencePiece, TrainWritesModelAndVocabAndRoundTrips) {
  const std::string& model = trained_model();
  ASSERT_TRUE(fs::is_regular_file(model));
  std::string prefix = model.substr(0, model.size() - 6);
  EXPECT_TRUE(fs::is_regular_file(prefix + ".vocab"));
  EXPECT_FALSE(fs::exists(prefix + ".partial.model"));

  SentencePieceTokenizer tok(model);
  EXPECT_EQ(tok.kind(), "sentencepiece");
  EXPECT_EQ(tok.vocab_size(), 60);
  for (const char* line : {"A dog runs across the grass .", "A woman walks her brown dog by the lake ."}) {
    std::vector<int64_t> ids = tok.encode(line);
    ASSERT_FALSE(ids.empty());
    for (int64_t id : ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, tok.vocab_size());
    }
    EXPECT_EQ(tok.decode(ids), line);
  }
  // The user-defined symbol is one piece.
  std::vector<int64_t> sep = tok.encode("<sep>");
  EXPECT_EQ(sep.size(), 2u);  // "▁" + "<sep>"
}

TEST(SentencePiece, SpecialIdsAndBosEos) {
  SentencePieceOptions opts;
  opts.add_bos = opts.add_eos = true;
  SentencePieceTokenizer tok(trained_model(), opts);
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.pad_id(), 3);
  std::vector<int64_t> ids = tok.encode("A dog .");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_EQ(tok.decode(ids), "A dog .");
  std::vector<int64_t> padded = ids;
  padded.insert(padded.end(), {3, 3});
  EXPECT_EQ(tok.decode(padded), "A dog .");
  DecodeTextOptions clean;
  clean.clean_up_spaces = true;
  EXPECT_EQ(tok.decode(ids, clean), "A dog.");
}

TEST(SentencePiece, LoadTokenizerFindsSpmModelInADirectory) {
  std::string dir = temp_dir("spm-dir");
  fs::copy_file(trained_model(), dir + "/spm.model");
  auto tok = load_tokenizer(dir);
  EXPECT_EQ(tok->kind(), "sentencepiece");
  EXPECT_EQ(tok->decode(tok->encode("Two dogs play .")), "Two dogs play .");
  EXPECT_EQ(load_tokenizer(trained_model())->kind(), "sentencepiece");
}

TEST(SentencePiece, EncodeIsSafeFromSeveralThreads) {
  SentencePieceTokenizer tok(trained_model());
  std::vector<int64_t> want = tok.encode("A man rides a bicycle .");
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i)
        if (tok.encode("A man rides a bicycle .") != want) ++bad[t];
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
}

TEST(SentencePiece, MissingOrCorruptModelFileIsNamed) {
  std::string dir = temp_dir("spm-bad");
  std::string msg = error_message([&] { SentencePieceTokenizer tok(dir + "/missing.model"); });
  EXPECT_NE(msg.find(dir + "/missing.model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;

  write_file_atomic(dir + "/corrupt.model", "this is not a protobuf \x01\x02\x03\xff\xfe");
  msg = error_message([&] { SentencePieceTokenizer tok(dir + "/corrupt.model"); });
  EXPECT_NE(msg.find(dir + "/corrupt.model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a valid SentencePiece model"), std::string::npos) << msg;

  msg = error_message([&] { SentencePieceTokenizer(trained_model()).decode({0, 60}); });
  EXPECT_NE(msg.find("60"), std::string::npos) << msg;
}

TEST(SentencePiece, TrainingErrorsNameTheInput) {
  std::string dir = temp_dir("spm-train-bad");
  SentencePieceTrainOptions opts;
  opts.input = dir + "/none.txt";
  opts.model_prefix = dir + "/m";
  std::string msg = error_message([&] { train_sentencepiece(opts); });
  EXPECT_NE(msg.find(dir + "/none.txt"), std::string::npos) << msg;

  write_file_atomic(dir + "/tiny.txt", "a b\n");
  opts.input = dir + "/tiny.txt";
  opts.vocab_size = 5000;  // far more pieces than two letters can make
  msg = error_message([&] { train_sentencepiece(opts); });
  EXPECT_NE(msg.find(dir + "/tiny.txt"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir + "/m.model"));
  EXPECT_FALSE(fs::exists(dir + "/m.partial.model"));
}

TEST(SentencePiece, MissingPluginIsAClearError) {
  // Only checks the lookup; the already-loaded plugin stays loaded for the other tests.
  const char* old = std::getenv("CLIPCAP_SPM_PLUGIN");
  std::string saved = old ? old : "";
  setenv("CLIPCAP_SPM_PLUGIN", "/nonexistent/libclipcap_spm.so", 1);
  std::string msg = error_message([] { sentencepiece_plugin_path(); });
  if (old) setenv("CLIPCAP_SPM_PLUGIN", saved.c_str(), 1); else unsetenv("CLIPCAP_SPM_PLUGIN");
  EXPECT_NE(msg.find("/nonexistent/libclipcap_spm.so"), std::string::npos) << msg;
  EXPECT_NE(msg.find("CLIPCAP_SPM_PLUGIN"), std::string::npos) << msg;
}

}  // namespace
}  // namespace clipcap
