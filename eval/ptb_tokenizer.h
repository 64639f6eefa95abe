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
// the earlier rule, as JFlex does): words, n't / 's / 'll / 're / 've / 'm / 'd splits, cannot /
// gonna / wanna / gotta / gimme / lemme / 'tis / 'twas splits, apostrophe words (o'clock, ma'am,
// '90s), numbers (3.5, 1,000, -5, 10:30), fractions, dates, hyphenated and slashed words
// (t-shirt, black/white), the abbreviation lists (mr. dr. st. etc. u.s. single letter + "."),
// quotes (" -> `` or ''), brackets (-LRB- ...), dashes (--- -> --), ellipses (...), ?! runs,
// URLs, e-mail addresses, @names and #tags, SGML tags. Characters the lexer does not know
// (emoji, control characters) are deleted, as CoreNLP's default "firstDelete" does.
// Known limits: British -> American respelling ("americanize") is not done; phone numbers are
// not kept as one token; character entities other than &amp; &lt; &gt; &quot; &mdash; &ndash;
// &nbsp; are not decoded; lower-casing is per code point (no special casing such as U+0130).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clipcap {

struct PtbTokenizerOptions {
  // CoreNLP's escapeForwardSlashAsterisk: "a/b" -> "a\/b", "*" -> "\*". Off: the 3.4.1 default
  // is not documented anywhere we could read; turn on if a reference corpus shows "\/".
  bool escape_forward_slash_asterisk = false;
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
