// GPT-2 BPE against tokenizer_cases.json (exact ids, pieces, tokens, decoded text), CLIP BPE on a
// hand-made vocabulary whose expected tokens are derived by hand below, and bad tokenizer files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_util.h"
#include "model/tokenizers/bpe_tokenizer.h"
#include "model/tokenizers/byte_bpe.h"
#include "model/tokenizers/clip_tokenizer.h"
#include "model/tokenizers/tokenizer.h"
#include "tests/test_support.h"

namespace clipcap {
namespace {

using test::fixture;
using test::temp_dir;
namespace fs = std::filesystem;

using ::clipcap::test::error_message;

std::vector<int64_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int64_t>>(); }

const nlohmann::json& cases() {
  static const nlohmann::json j = read_json(fixture("tokenizer_cases.json"));
  return j;
}

const Gpt2BpeTokenizer& gpt2() {
  static const std::unique_ptr<Gpt2BpeTokenizer> tok = Gpt2BpeTokenizer::from_dir(fixture("tiny-gpt2"));
  return *tok;
}

DecodeTextOptions raw_decode() {
  DecodeTextOptions o;
  o.skip_special = false;
  o.clean_up_spaces = false;
  return o;
}

void expect_all_cases(const Gpt2BpeTokenizer& tok) {
  for (const auto& c : cases()["cases"]) {
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE("case '" + text + "' (" + c["note"].get<std::string>() + ")");
    EXPECT_EQ(tok.encode_ordinary(text), ids_of(c["ids"]));
    EXPECT_EQ(tok.encode(text), ids_of(c["hf_ids"]));
    EXPECT_EQ(tok.decode(ids_of(c["ids"]), raw_decode()), c["decoded"].get<std::string>());
  }
  for (const auto& c : cases()["decode_cases"]) {
    SCOPED_TRACE("decode case: " + c["note"].get<std::string>());
    DecodeTextOptions clean = raw_decode();
    clean.clean_up_spaces = true;
    EXPECT_EQ(tok.decode(ids_of(c["ids"]), raw_decode()), c["decoded"].get<std::string>());
    EXPECT_EQ(tok.decode(ids_of(c["ids"]), clean), c["decoded_clean"].get<std::string>());
  }
}

TEST(Gpt2Tokenizer, GoldenCasesFromVocabJsonAndMergesTxt) { expect_all_cases(gpt2()); }

TEST(Gpt2Tokenizer, GoldenCasesFromEncoderJsonAndVocabBpe) {
  std::string dir = temp_dir("gpt2-npm-names");
  fs::copy_file(fixture("tiny-gpt2/vocab.json"), dir + "/encoder.json");
  fs::copy_file(fixture("tiny-gpt2/merges.txt"), dir + "/vocab.bpe");
  auto tok = load_tokenizer(dir);
  ASSERT_EQ(tok->kind(), "gpt2-bpe");
  expect_all_cases(dynamic_cast<const Gpt2BpeTokenizer&>(*tok));
}

TEST(Gpt2Tokenizer, PreTokenizerPiecesAndBpeTokensMatchTheRegexReference) {
  for (const auto& c : cases()["cases"]) {
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE("case '" + text + "'");
    std::vector<std::string> pieces;
    for (std::string_view p : gpt2_pretokenize(text)) pieces.emplace_back(p);
    EXPECT_EQ(pieces, c["pieces"].get<std::vector<std::string>>());
    std::vector<std::string> tokens;
    for (int64_t id : gpt2().encode_ordinary(text)) tokens.push_back(gpt2().token(id));
    EXPECT_EQ(tokens, c["tokens"].get<std::vector<std::string>>());
  }
}

TEST(Gpt2Tokenizer, SpecialIdsAndSkippingEndOfText) {
  const auto& tok = gpt2();
  EXPECT_EQ(tok.vocab_size(), 50257);
  EXPECT_EQ(tok.eos_id(), 50256);
  EXPECT_EQ(tok.bos_id(), 50256);
  EXPECT_EQ(tok.pad_id(), 50256);
  // " hello" <|endoftext|> " world": the default decode drops the special token.
  EXPECT_EQ(tok.decode({23748, 50256, 995}), " hello world");
  EXPECT_EQ(tok.decode({23748, 50256, 995}, raw_decode()), " hello<|endoftext|> world");
}

TEST(Gpt2Tokenizer, LoadTokenizerPicksGpt2ForTheFixtureDirectory) {
  auto tok = load_tokenizer(fixture("tiny-gpt2"));
  EXPECT_EQ(tok->kind(), "gpt2-bpe");
  EXPECT_EQ(tok->encode("A dog runs across the grass ."), (std::vector<int64_t>{32, 3290, 4539, 1973, 262, 8701, 764}));
}

TEST(Gpt2Tokenizer, EncodeFromSeveralThreadsGivesTheSameIds) {
  std::vector<std::string> texts;
  std::vector<std::vector<int64_t>> want;
  for (const auto& c : cases()["cases"]) {
    texts.push_back(c["text"].get<std::string>());
    want.push_back(ids_of(c["hf_ids"]));
  }
  auto tok = Gpt2BpeTokenizer::from_dir(fixture("tiny-gpt2"));  // fresh, empty cache
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round)
        for (size_t i = 0; i < texts.size(); ++i)
          if (tok->encode(texts[(i + t * 7) % texts.size()]) != want[(i + t * 7) % texts.size()]) ++mismatches[t];
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(Gpt2Tokenizer, CleanUpTokenizationFollowsHfReplacementOrder) {
  EXPECT_EQ(clean_up_tokenization("a dog , a cat . is n't it ? yes ! I 'm he 's we 've they 're ' quoted ' x"),
            "a dog, a cat. isn't it? yes! I'm he's we've they're'quoted'x");
}

TEST(Gpt2Tokenizer, Utf8ReplaceDecodingMatchesPython) {
  // b"\xe2\x82".decode(errors="replace") == "\ufffd" (one maximal subpart); b"\xed\xa0\x80" (a
  // surrogate) is three errors; b"\xf0\x9f\x98" then "a" is one error then "a".
  EXPECT_EQ(utf8_decode_replace("\xe2\x82"), "\xEF\xBF\xBD");
  EXPECT_EQ(utf8_decode_replace("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8_decode_replace("\xf0\x9f\x98" "a"), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(utf8_decode_replace("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

// ---- bad files -------------------------------------------------------------------------------

std::string tiny_bpe_dir(const std::string& tag, const std::string& vocab, const std::string& merges) {
  std::string dir = temp_dir(tag);
  write_file_atomic(dir + "/vocab.json", vocab);
  write_file_atomic(dir + "/merges.txt", merges);
  return dir;
}

TEST(Gpt2Tokenizer, MissingMergesFileIsNamed) {
  std::string dir = tiny_bpe_dir("gpt2-no-merges", R"({"a": 0, "b": 1, "ab": 2})", "");
  fs::remove(dir + "/merges.txt");
  std::string msg = error_message([&] { Gpt2BpeTokenizer::from_files(dir + "/vocab.json", dir + "/merges.txt"); });
  EXPECT_NE(msg.find(dir + "/merges.txt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;
  msg = error_message([&] { load_tokenizer(dir); });
  EXPECT_NE(msg.find(dir), std::string::npos) << msg;
}

TEST(Gpt2Tokenizer, VocabThatIsNotJsonIsNamed) {
  std::string dir = tiny_bpe_dir("gpt2-bad-vocab", "{\"a\": 0,\n \"b\": }", "#version: 0.2\na b\n");
  std::string msg = error_message([&] { Gpt2BpeTokenizer::from_dir(dir); });
  EXPECT_NE(msg.find(dir + "/vocab.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("JSON"), std::string::npos) << msg;

  std::string dir2 = tiny_bpe_dir("gpt2-vocab-not-object", "[1, 2, 3]", "#version: 0.2\n");
  msg = error_message([&] { Gpt2BpeTokenizer::from_dir(dir2); });
  EXPECT_NE(msg.find(dir2 + "/vocab.json"), std::string::npos) << msg;

  std::string dir3 = tiny_bpe_dir("gpt2-vocab-bad-id", R"({"a": "zero"})", "#version: 0.2\n");
  msg = error_message([&] { Gpt2BpeTokenizer::from_dir(dir3); });
  EXPECT_NE(msg.find(dir3 + "/vocab.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'a'"), std::string::npos) << msg;

  // Found by tests/fuzz/fuzz_bpe_tokenizers: one id of 88888888 among 4 tokens allocated tables of
  // 89 M entries (seconds and gigabytes) before anything was said.
  std::string dir4 = tiny_bpe_dir("gpt2-vocab-huge-id", R"({"a": 88888888, "b": 1, "ab": 2, "c": 0})", "#version: 0.2\na b\n");
  msg = error_message([&] { Gpt2BpeTokenizer::from_dir(dir4); });
  EXPECT_NE(msg.find(dir4 + "/vocab.json: token ids run up to 88888888 for 4 tokens"), std::string::npos) << msg;
}

TEST(Gpt2Tokenizer, MalformedMergesLineIsNamedWithItsLineNumber) {
  std::string dir = tiny_bpe_dir("gpt2-bad-merges", R"({"a": 0, "b": 1, "ab": 2})", "#version: 0.2\na b\nab\n");
  std::string msg = error_message([&] { Gpt2BpeTokenizer::from_dir(dir); });
  EXPECT_NE(msg.find(dir + "/merges.txt: line 3"), std::string::npos) << msg;
}

TEST(Gpt2Tokenizer, MergesWithoutVersionHeaderKeepTheirFirstLine) {
  // Rank 0 is "a b" when there is no "#version" line: "ab" must come out as one token.
  std::string dir = tiny_bpe_dir("gpt2-no-header", R"({"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3})", "a b\n");
  auto tok = Gpt2BpeTokenizer::from_dir(dir);
  EXPECT_EQ(tok->encode("ab"), (std::vector<int64_t>{2}));
  EXPECT_EQ(tok->encode("ba<|endoftext|>"), (std::vector<int64_t>{1, 0, 3}));
}

TEST(Gpt2Tokenizer, DecodingAnUnknownIdIsAnError) {
  std::string msg = error_message([&] { gpt2().decode({15496, 50257}); });
  EXPECT_NE(msg.find("vocab.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("50257"), std::string::npos) << msg;
}

TEST(Tokenizer, DirectoryWithoutTokenizerFilesIsAnError) {
  std::string dir = temp_dir("no-tokenizer");
  std::string msg = error_message([&] { load_tokenizer(dir); });
  EXPECT_NE(msg.find(dir), std::string::npos) << msg;
  EXPECT_NE(msg.find("no tokenizer files"), std::string::npos) << msg;
  msg = error_message([&] { load_tokenizer(dir + "/missing"); });
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;
}

// ---- CLIP BPE --------------------------------------------------------------------------------
// A made-up 60-token vocabulary: id = index in this list. "</w>" marks a word's last symbol.
const std::vector<std::string> kClipVocab = {
    "a", "b", "c", "d", "e", "f", "g", "h", "i", "k", "l", "m", "n", "o", "p", "r", "s", "t", "u", "y",
    "\xC3\x83" /* Ã: byte 0xC3 */, "'", ".", "!", "1", "2", "v", "w",
    "a</w>", "s</w>", "t</w>", "g</w>", "f</w>", "o</w>", "e</w>", "1</w>", "2</w>", ".</w>", "!</w>",
    "\xC2\xA9</w>" /* ©: byte 0xA9 */, "d</w>", "y</w>",
    "ph", "pho", "to</w>", "photo</w>", "of</w>", "do", "dog</w>", "dog", "'s</w>", "ca", "caf", "aa",
    "ts</w>", "cats</w>", "th", "the</w>", "<|startoftext|>", "<|endoftext|>"};
// Rank = line index after the header line, which CLIPTokenizer always skips.
const char* kClipMerges =
    "#version: 0.2\n"
    "p h\nph o\nt o</w>\npho to</w>\no f</w>\nd o\ndo g</w>\ndo g\n' s</w>\nc a\nca f\na a\nt s</w>\n"
    "ca ts</w>\nt h\nth e</w>\n";

std::vector<int64_t> clip_ids(const std::vector<std::string>& tokens) {
  std::vector<int64_t> ids;
  for (const std::string& t : tokens) {
    auto it = std::find(kClipVocab.begin(), kClipVocab.end(), t);
    EXPECT_NE(it, kClipVocab.end()) << t;
    ids.push_back(it - kClipVocab.begin());
  }
  return ids;
}

std::string clip_dir(const std::string& config = R"({"model_type": "clip", "text_config": {"max_position_embeddings": 8}})") {
  std::string dir = temp_dir("clip-bpe");
  nlohmann::json vocab = nlohmann::json::object();
  for (size_t i = 0; i < kClipVocab.size(); ++i) vocab[kClipVocab[i]] = i;
  write_file_atomic(dir + "/vocab.json", vocab.dump());
  write_file_atomic(dir + "/merges.txt", kClipMerges);
  write_file_atomic(dir + "/config.json", config);
  return dir;
}

TEST(ClipTokenizer, HandDerivedIdsOnAMadeUpVocabulary) {
  auto tok = load_tokenizer(clip_dir(R"({"model_type": "clip", "text_config": {"max_position_embeddings": 77}})"));
  ASSERT_EQ(tok->kind(), "clip-bpe");
  ASSERT_EQ(kClipVocab.size(), 60u);
  const std::string B = "<|startoftext|>", E = "<|endoftext|>";
  // Lower-cased; "photo" = p h o t o</w> -> ph o ... -> pho to</w> -> photo</w>; "." alone -> .</w>
  EXPECT_EQ(tok->encode("A photo of a dog."), clip_ids({B, "a</w>", "photo</w>", "of</w>", "a</w>", "dog</w>", ".</w>", E}));
  // Controls dropped, \t \n and NBSP (Zs) are spaces: the same words.
  EXPECT_EQ(tok->encode("A\tphoto\n\nof\x07 a\xC2\xA0" "dog."), tok->encode("A photo of a dog."));
  // 'S is a contraction under IGNORECASE (after lower-casing anyway); "dogs" stops at "dog" + "s</w>".
  EXPECT_EQ(tok->encode("DOG'S dogs"), clip_ids({B, "dog</w>", "'s</w>", "dog", "s</w>", E}));
  // One digit per piece; a punctuation run is one piece; "aaaa" merges a a left to right, non-overlapping.
  EXPECT_EQ(tok->encode("12 !! aaaa aaa"),
            clip_ids({B, "1</w>", "2</w>", "!", "!</w>", "aa", "a", "a</w>", "aa", "a</w>", E}));
  // Byte level: é = C3 A9 -> "Ã" "©</w>"; a decomposed e + U+0301 is NFC-composed first.
  EXPECT_EQ(tok->encode("Caf\xC3\xA9"), clip_ids({B, "caf", "\xC3\x83", "\xC2\xA9</w>", E}));
  EXPECT_EQ(tok->encode("Cafe\xCC\x81"), tok->encode("Caf\xC3\xA9"));
  // Symbols missing from the vocabulary ("z", "x") become unk = <|endoftext|>; "cats" uses 3 merges.
  EXPECT_EQ(tok->encode("zoo cats"), clip_ids({B, E, "o", "o</w>", "cats</w>", E}));
  // Literal special tokens are cut out before cleaning, even glued to punctuation.
  EXPECT_EQ(tok->encode("!<|endoftext|>the"), clip_ids({B, "!</w>", E, "the</w>", E}));
  EXPECT_EQ(tok->encode(""), clip_ids({B, E}));
  EXPECT_EQ(tok->bos_id(), 58);
  EXPECT_EQ(tok->eos_id(), 59);
  EXPECT_EQ(tok->pad_id(), 59);
}

TEST(ClipTokenizer, TruncatesToTheConfigContextLengthKeepingEos) {
  auto tok = ClipBpeTokenizer::from_dir(clip_dir());  // max_position_embeddings 8
  EXPECT_EQ(tok->context_length(), 8);
  std::vector<int64_t> ids = tok->encode("a a a a a a a a a a");
  ASSERT_EQ(ids.size(), 8u);
  EXPECT_EQ(ids.front(), 58);
  EXPECT_EQ(ids.back(), 59);
  EXPECT_EQ(std::vector<int64_t>(ids.begin() + 1, ids.end() - 1), std::vector<int64_t>(6, 28));
}

TEST(ClipTokenizer, DecodeJoinsWordsAndStrips) {
  auto tok = ClipBpeTokenizer::from_dir(clip_dir(R"({"model_type": "clip"})"));
  EXPECT_EQ(tok->decode(tok->encode("A photo of a dog.")), "a photo of a dog .");
  EXPECT_EQ(tok->decode(tok->encode("Caf\xC3\xA9 dogs")), "caf\xC3\xA9 dogs");
  DecodeTextOptions keep;
  keep.skip_special = false;
  EXPECT_EQ(tok->decode(tok->encode("a dog"), keep), "<|startoftext|>a dog <|endoftext|>");
  DecodeTextOptions clean;
  clean.clean_up_spaces = true;
  EXPECT_EQ(tok->decode(tok->encode("a dog."), clean), "a dog.");
}

TEST(ClipTokenizer, PadIdComesFromTheConfigWhenNoTokenizerFileNamesOne) {
  auto tok = load_tokenizer(clip_dir(R"({"model_type": "clip", "text_config": {"pad_token_id": 1}})"));
  EXPECT_EQ(tok->pad_id(), 1);
  std::string dir = clip_dir(R"({"model_type": "clip", "text_config": {"pad_token_id": 1}})");
  write_file_atomic(dir + "/special_tokens_map.json", R"({"pad_token": {"content": "!</w>"}})");
  EXPECT_EQ(load_tokenizer(dir)->pad_id(), 38);
}

TEST(ClipTokenizer, NormalizeLikeBasicTokenizerWithoutFtfy) {
  // Lower-case with final sigma, CJK ideographs split off, U+2028 splits, U+FFFD and Cf dropped.
  EXPECT_EQ(ClipBpeTokenizer::normalize("  \xCE\x9F\xCE\xA3 A\xE7\x8C\xAB" "B\xE2\x80\xA8" "C\xEF\xBF\xBD\xE2\x80\x8B" "D "),
            "\xCE\xBF\xCF\x82 a \xE7\x8C\xAB b cd");
}

TEST(ClipTokenizer, MissingSpecialTokenIsNamed) {
  std::string dir = clip_dir();
  write_file_atomic(dir + "/tokenizer_config.json", R"({"tokenizer_class": "CLIPTokenizer", "bos_token": "<s>"})");
  std::string msg = error_message([&] { load_tokenizer(dir); });
  EXPECT_NE(msg.find(dir + "/vocab.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'<s>'"), std::string::npos) << msg;
}

}  // namespace
}  // namespace clipcap
