// PTB tokenisation the way the COCO caption toolkit (pycocoevalcap) does it.
//
//   std::vector<std::string> toks = clipcap::ptb_tokenize("A dog's (red) ball.");
//   // {"a", "dog", "'s", "-lrb-", "red", "-rrb-", "ball", "."}
//   std::vector<std::string> caps = clipcap::coco_tokenize({"A dog's ball.", "Isn't it?"});
//   // {"a dog 's ball", "is n't it"}
//
// pycocoevalcap joins every caption of a batch with '\n', runs Stanford CoreNLP 3.4.1
// `PTBTokenizer -preserveLines -lowerCase` over the whole text, splits the output on '\n' and
// drops the punctuation tokens listed in coco_punctuation(). coco_tokenize() does the same, so
// captions are scored on exactly the tokens the reference toolkit scores.
//
// The lexer below is a rewrite of the PTBLexer rules that captions meet (longest match, ties to
// the earlier rule, as JFlex does): words, n't / 's / 'll / 're / 've / 'm / 'd splits, cannot ->
// can not, apostrophe words (o'clock, ma'am, '90s, 'twas), numbers (3.5, 1,000, -5, 10:30),
// fractions, dates, hyphenated and slashed words (t-shirt, black/white), the abbreviation lists
// (mr. dr. st. etc. u.s. single letter + "."), quotes (" -> `` or ''), brackets ( [ < -> -LRB-,
// { -> -LCB-), dashes (--- -> --), ellipses (...), ?! runs, URLs, e-mail addresses, @names and
// #tags, SGML tags. Characters the lexer does not know (emoji, control characters) are deleted,
// as CoreNLP's default "firstDelete" does.
//
// Which 3.4.1 defaults (settled from PTBLexer.flex/PTBTokenizer.java sources before and after
// 3.4.1, as the 3.4.1 file itself was not at hand): ptb3Escaping options all on, including
// americanize (on in the lexer through 2013 and documented "Default is true" until 2016; turned
// off in 2017) and escapeForwardSlashAsterisk (same history): so "grey" -> "gray", "a/b" ->
// "a\/b", "*" -> "\*". Square brackets are -LRB-/-RRB- as in the 2013 lexer (later ones say -LSB-). "gonna", "wanna",
// "'tis" are NOT split (no assimilation rule before 2016, and that one was off by default).
// Phone-number-like digit groups ("555 123 4567", "(12) 345-6789") are one token with U+00A0 for
// spaces and -LRB-/-RRB- for parentheses, as {PHONE} made them. Known limits: character entities other than &amp;
// &lt; &gt; &quot; &mdash; &ndash; &nbsp; are not decoded; lower-casing is per code point (no
// special casing such as U+0130).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clipcap {

struct PtbTokenizerOptions {
  // CoreNLP's americanize: British spellings of whole {WORD} tokens respelled (eval/americanize.h),
  // case-sensitively and before lower-casing, as PTBLexer did.
  bool americanize = true;
  // CoreNLP's escapeForwardSlashAsterisk: "a/b" -> "a\/b", "*" -> "\*".
  bool escape_forward_slash_asterisk = true;
};

// Tokens of `text` as `PTBTokenizer -preserveLines -lowerCase` prints them (lower-cased,
// -LRB- as "-lrb-"); each line break of the input is a "\n" token. Invalid UTF-8 bytes become
// U+FFFD, which the lexer deletes.
std::vector<std::string> ptb_tokenize(std::string_view text, const PtbTokenizerOptions& options = {});

// The tokens pycocoevalcap drops after tokenising: '' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ;
// (upper-case brackets only: lower-cased ones such as "-lrb-" are kept, as in the toolkit).
bool is_coco_punctuation(std::string_view token);

// pycocoevalcap's PTBTokenizer.tokenize for one batch: one space-joined token string per
// caption, punctuation dropped. Newlines inside a caption become spaces first, as upstream;
// other line breaks (\r, U+2028, ...) shift later captions onto other lines, as upstream.
std::vector<std::string> coco_tokenize(const std::vector<std::string>& captions,
                                       const PtbTokenizerOptions& options = {});

}  // namespace clipcap
