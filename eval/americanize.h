// British -> American respelling of one token, as CoreNLP's Americanize.americanize(String) does
// it (the version PTBLexer called in CoreNLP 3.4.1, whose tokenizer the COCO caption toolkit runs).
//
//   clipcap::americanize("grey");     // "gray"
//   clipcap::americanize("colours");  // "colors"  (the ^[a-z]{3,}our(s?)$ rule)
//   clipcap::americanize("Grey");     // "Grey"    (case-sensitive: capitalised words are kept)
//
// Exactly CoreNLP's rules: tokens shorter than 4 characters are kept; then a fixed word list
// (centre, favourite, grey, travelled, ...); tokens shorter than 6 are kept; then five patterns
// in order (haem(at)?o, aemia$, [lL]eukaem, programme(s?)$, ^([a-z]{3,})our(s?)$ except words
// containing contour, detour, glamour, velour, ...). Month and day names are not touched: CoreNLP
// capitalises them here, and -lowerCase undoes that.
#pragma once

#include <string>

namespace clipcap {

std::string americanize(const std::string& token);

}  // namespace clipcap
