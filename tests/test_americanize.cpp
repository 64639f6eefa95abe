// CoreNLP's Americanize as PTBLexer applied it in the COCO toolkit's tokenizer: the word list, the
// five patterns and their exceptions, the length limits, case sensitivity.
#include <gtest/gtest.h>

#include "eval/americanize.h"

namespace clipcap {
namespace {

TEST(Americanize, WordListIsCaseSensitive) {
  EXPECT_EQ(americanize("grey"), "gray");
  EXPECT_EQ(americanize("Grey"), "Grey");
  EXPECT_EQ(americanize("centre"), "center");
  EXPECT_EQ(americanize("theatres"), "theaters");
  EXPECT_EQ(americanize("travelling"), "traveling");
  EXPECT_EQ(americanize("kerb"), "curb");
  EXPECT_EQ(americanize("Labour"), "Labor");  // one of the two capitalised entries
  EXPECT_EQ(americanize("glamour"), "glamour");
}

TEST(Americanize, OurPatternNeedsThreeLowerCaseLettersAndSkipsExceptions) {
  EXPECT_EQ(americanize("colour"), "color");
  EXPECT_EQ(americanize("colours"), "colors");
  EXPECT_EQ(americanize("behaviour"), "behavior");
  EXPECT_EQ(americanize("parlours"), "parlors");
  EXPECT_EQ(americanize("Colour"), "Colour");  // ^[a-z]{3,}: capitals never match
  EXPECT_EQ(americanize("flours"), "flours");  // "fl" is too short a stem
  EXPECT_EQ(americanize("hour"), "hour");      // under 6 characters: no pattern at all
  EXPECT_EQ(americanize("detours"), "detours");
  EXPECT_EQ(americanize("contour"), "contour");
  EXPECT_EQ(americanize("downpour"), "downpour");
  EXPECT_EQ(americanize("velours"), "velours");
}

TEST(Americanize, MedicalAndProgrammePatterns) {
  EXPECT_EQ(americanize("haemoglobin"), "hemoglobin");
  EXPECT_EQ(americanize("haematoma"), "hematoma");
  EXPECT_EQ(americanize("anaemia"), "anemia");
  EXPECT_EQ(americanize("Leukaemia"), "Leukemia");
  EXPECT_EQ(americanize("programmes"), "programs");
  EXPECT_EQ(americanize("programme"), "program");
}

TEST(Americanize, ShortAndUnknownWordsAreKept) {
  EXPECT_EQ(americanize("our"), "our");
  EXPECT_EQ(americanize("dog"), "dog");
  EXPECT_EQ(americanize("january"), "january");  // CoreNLP capitalises it; -lowerCase undoes that
  EXPECT_EQ(americanize("caf\xC3\xA9s"), "caf\xC3\xA9s");
}

}  // namespace
}  // namespace clipcap
