// PTB tokenisation as CoreNLP 3.4.1 `PTBTokenizer -preserveLines -lowerCase` does it, plus
// pycocoevalcap's punctuation filter. Expected tokens follow PTBLexer's rules (longest match,
// earlier rule on ties) for the cases captions contain.
#include <gtest/gtest.h>

#include <cctype>
#include <ostream>
#include <string>

#include "eval/ptb_tokenizer.h"

namespace clipcap {
namespace {

using Tokens = std::vector<std::string>;

struct Case {
  const char* text;
  Tokens tokens;
};

// gtest prints a parameter it knows nothing of as raw bytes: show the text instead.
void PrintTo(const Case& c, std::ostream* os) { *os << '"' << c.text << '"'; }

// "03_I_m_gonna_wanna_go": the case's position and its first words, as gtest names allow.
std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string name = (info.index < 10 ? "0" : "") + std::to_string(info.index) + "_";
  for (const char* p = info.param.text; *p && name.size() < 32; ++p) {
    const bool word = std::isalnum(static_cast<unsigned char>(*p)) != 0;
    if (word) name += *p;
    else if (name.back() != '_') name += '_';
  }
  while (name.back() == '_') name.pop_back();
  return name;
}

class PtbTokenizerCase : public ::testing::TestWithParam<Case> {};

TEST_P(PtbTokenizerCase, GivesThePtbTokens) {
  EXPECT_EQ(ptb_tokenize(GetParam().text), GetParam().tokens) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    PtbTokenizer, PtbTokenizerCase,
    ::testing::Values(
        Case{"A dog's ball.", {"a", "dog", "'s", "ball", "."}},
        Case{"He isn't here, can't go and won't stay.",
             {"he", "is", "n't", "here", ",", "ca", "n't", "go", "and", "wo", "n't", "stay", "."}},
        Case{"Don't", {"do", "n't"}},
        Case{"I'm gonna wanna go; cannot do it!",
             {"i", "'m", "gonna", "wanna", "go", ";", "can", "not", "do", "it", "!"}},
        Case{"'Twas a cannots", {"'twas", "a", "cannots"}},
        Case{"They'll say we're right, you've been there, he'd go.",
             {"they", "'ll", "say", "we", "'re", "right", ",", "you", "'ve", "been", "there", ",", "he", "'d", "go", "."}},
        Case{"\"Hello,\" she said.", {"``", "hello", ",", "''", "she", "said", "."}},
        Case{"A man (in a red shirt) [holding] {a} sign.",
             {"a", "man", "-lrb-", "in", "a", "red", "shirt", "-rrb-", "-lrb-", "holding", "-rrb-", "-lcb-", "a",
              "-rcb-", "sign", "."}},
        Case{"It costs 3.5 dollars or 1,000 yen at 10:30.",
             {"it", "costs", "3.5", "dollars", "or", "1,000", "yen", "at", "10:30", "."}},
        Case{"Mr. Smith met Dr. Jones in the U.S. today.",
             {"mr.", "smith", "met", "dr.", "jones", "in", "the", "u.s.", "today", "."}},
        Case{"Wait -- what --- no ... really?! -----",
             {"wait", "--", "what", "--", "no", "...", "really", "?!", "-----"}},
        Case{"A t-shirt with a 3-year-old on black/white stripes & more.",
             {"a", "t-shirt", "with", "a", "3-year-old", "on", "black\\/white", "stripes", "&", "more", "."}},
        Case{"The '90s o'clock rock 'n' roll ma'am.", {"the", "'90s", "o'clock", "rock", "'n'", "roll", "ma'am", "."}},
        Case{"a photo of the letter a.", {"a", "photo", "of", "the", "letter", "a."}},
        Case{"dogs, cats, etc.", {"dogs", ",", "cats", ",", "etc."}},
        Case{"Colour of the grey centre.", {"colour", "of", "the", "gray", "center", "."}},
        Case{"Grey colours, the Theatre's neighbours' favourite labour.",
             {"grey", "colors", ",", "the", "theatre", "'s", "neighbors", "'", "favorite", "labor", "."}},
        Case{"A sign for amazon.com here.", {"a", "sign", "for", "amazon.com", "here", "."}},
        Case{"1 1/2 cups, \xC2\xBD cup, and 12/25/2010.",
             {"1\xC2\xA0" "1\\/2", "cups", ",", "1\\/2", "cup", ",", "and", "12\\/25\\/2010", "."}},
        Case{"AT&T and at&t", {"at&t", "and", "at", "&", "t"}},
        Case{"$5 US$ 5% a+b -5", {"$", "5", "us$", "5", "%", "a", "+", "b", "-5"}},
        Case{"the owners' house", {"the", "owners", "'", "house"}},
        Case{"\xE2\x80\x9C" "Curly" "\xE2\x80\x9D" " it\xE2\x80\x99s", {"``", "curly", "''", "it", "'s"}},
        Case{"'quoted' word", {"`", "quoted", "'", "word"}},
        Case{"en\xE2\x80\x94" "dash", {"en", "--", "dash"}},
        Case{"emoji \xF0\x9F\x98\x80 caf\xC3\xA9 NA\xC3\x8FVE", {"emoji", "caf\xC3\xA9", "na\xC3\xafve"}},
        Case{"two\nlines", {"two", "\n", "lines"}},
        Case{"Call 555 123 4567 or (12) 345-6789, not 555-1234.",
             {"call", "555\xC2\xA0" "123\xC2\xA0" "4567", "or", "-lrb-12-rrb-\xC2\xA0" "345-6789", ",", "not", "555-1234", "."}},
        Case{"", {}}),
    case_name);

TEST(PtbTokenizer, SlashAndAsteriskAreEscapedAsIn341UnlessTurnedOff) {
  EXPECT_EQ(ptb_tokenize("black/white ** a / b"), (Tokens{"black\\/white", "\\*\\*", "a", "\\/", "b"}));
  PtbTokenizerOptions plain;
  plain.escape_forward_slash_asterisk = false;
  EXPECT_EQ(ptb_tokenize("black/white **", plain), (Tokens{"black/white", "**"}));
}

TEST(PtbTokenizer, AmericanizeTouchesWholeWordsOnlyAndCanBeTurnedOff) {
  // Hyphenated words are THING tokens, which PTBLexer never respelled.
  EXPECT_EQ(ptb_tokenize("grey-haired man in grey"), (Tokens{"grey-haired", "man", "in", "gray"}));
  EXPECT_EQ(ptb_tokenize("the colour's"), (Tokens{"the", "color", "'s"}));  // {WORD}/{REDAUX}
  PtbTokenizerOptions british;
  british.americanize = false;
  EXPECT_EQ(ptb_tokenize("grey centre", british), (Tokens{"grey", "centre"}));
}

TEST(PtbTokenizer, CocoPunctuationListIsTheToolkits) {
  for (const char* p : {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
                        "...", ";"})
    EXPECT_TRUE(is_coco_punctuation(p)) << p;
  for (const char* p : {"-lrb-", "?!", "-----", "'s", "n't", "&", "a."}) EXPECT_FALSE(is_coco_punctuation(p)) << p;
}

TEST(PtbTokenizer, CocoTokenizeDropsPunctuationPerCaption) {
  EXPECT_EQ(coco_tokenize({"A dog's ball (red).", "Isn't it?", "...", "Wow?!", "A -- B --- C ----- D"}),
            (Tokens{"a dog 's ball -lrb- red -rrb-", "is n't it", "", "wow ?!", "a b c ----- d"}));
}

TEST(PtbTokenizer, CocoTokenizeKeepsOneLinePerCaption) {
  // A newline inside a caption is a space; an empty caption keeps its line.
  EXPECT_EQ(coco_tokenize({"a\nb", "", "c"}), (Tokens{"a b", "", "c"}));
  // A carriage return is a line break to the tokenizer, so (as upstream) later captions shift.
  EXPECT_EQ(coco_tokenize({"a\rb", "c"}), (Tokens{"a", "b"}));
}

TEST(PtbTokenizer, InvalidUtf8IsDroppedNotFatal) {
  EXPECT_EQ(ptb_tokenize("a \xFF\xFE dog"), (Tokens{"a", "dog"}));
}

}  // namespace
}  // namespace clipcap
