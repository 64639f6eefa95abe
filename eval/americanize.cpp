#include "eval/americanize.h"

#include <array>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace clipcap {
namespace {

constexpr size_t kMinLengthChanged = 4;   // shorter tokens are never changed
constexpr size_t kMinLengthPattern = 6;   // shorter tokens skip the patterns

// CoreNLP's word list (British, American). Case-sensitive, as there: "Grey" stays.
const std::unordered_map<std::string_view, std::string_view>& word_list() {
  static const std::unordered_map<std::string_view, std::string_view> map = {
      {"anaesthetic", "anesthetic"}, {"analogue", "analog"}, {"analogues", "analogs"}, {"analyse", "analyze"},
      {"analysed", "analyzed"}, {"analysing", "analyzing"}, {"armoured", "armored"}, {"cancelled", "canceled"},
      {"cancelling", "canceling"}, {"candour", "candor"}, {"capitalise", "capitalize"},
      {"capitalised", "capitalized"}, {"capitalisation", "capitalization"}, {"centre", "center"},
      {"chimaeric", "chimeric"}, {"clamour", "clamor"}, {"coloured", "colored"}, {"colouring", "coloring"},
      {"colourful", "colorful"}, {"defence", "defense"}, {"Defence", "Defense"}, {"discolour", "discolor"},
      {"discolours", "discolors"}, {"discoloured", "discolored"}, {"discolouring", "discoloring"},
      {"encyclopaedia", "encyclopedia"}, {"endeavour", "endeavor"}, {"endeavours", "endeavors"},
      {"endeavoured", "endeavored"}, {"endeavouring", "endeavoring"}, {"fervour", "fervor"}, {"favour", "favor"},
      {"favours", "favors"}, {"favoured", "favored"}, {"favouring", "favoring"}, {"favourite", "favorite"},
      {"favourites", "favorites"}, {"fibre", "fiber"}, {"fibres", "fibers"}, {"finalise", "finalize"},
      {"finalised", "finalized"}, {"finalising", "finalizing"}, {"flavour", "flavor"}, {"flavours", "flavors"},
      {"flavoured", "flavored"}, {"flavouring", "flavoring"}, {"glamour", "glamour"}, {"grey", "gray"},
      {"harbour", "harbor"}, {"harbours", "harbors"}, {"homologue", "homolog"}, {"homologues", "homologs"},
      {"honour", "honor"}, {"honours", "honors"}, {"honoured", "honored"}, {"honouring", "honoring"},
      {"honourable", "honorable"}, {"humour", "humor"}, {"humours", "humors"}, {"humoured", "humored"},
      {"humouring", "humoring"}, {"kerb", "curb"}, {"labelled", "labeled"}, {"labelling", "labeling"},
      {"labour", "labor"}, {"Labour", "Labor"}, {"labours", "labors"}, {"laboured", "labored"},
      {"labouring", "laboring"}, {"leant", "leaned"}, {"learnt", "learned"}, {"localise", "localize"},
      {"localised", "localized"}, {"manoeuvre", "maneuver"}, {"manoeuvres", "maneuvers"},
      {"maximise", "maximize"}, {"maximised", "maximized"}, {"maximising", "maximizing"}, {"meagre", "meager"},
      {"minimise", "minimize"}, {"minimised", "minimized"}, {"minimising", "minimizing"},
      {"modernise", "modernize"}, {"modernised", "modernized"}, {"modernising", "modernizing"},
      {"misdemeanour", "misdemeanor"}, {"misdemeanours", "misdemeanors"}, {"neighbour", "neighbor"},
      {"neighbours", "neighbors"}, {"neighbourhood", "neighborhood"}, {"neighbourhoods", "neighborhoods"},
      {"oestrogen", "estrogen"}, {"oestrogens", "estrogens"}, {"organisation", "organization"},
      {"organisations", "organizations"}, {"penalise", "penalize"}, {"penalised", "penalized"},
      {"popularise", "popularize"}, {"popularised", "popularized"}, {"popularises", "popularizes"},
      {"popularising", "popularizing"}, {"practise", "practice"}, {"practised", "practiced"},
      {"pressurise", "pressurize"}, {"pressurised", "pressurized"}, {"pressurises", "pressurizes"},
      {"pressurising", "pressurizing"}, {"realise", "realize"}, {"realised", "realized"},
      {"realising", "realizing"}, {"realises", "realizes"}, {"recognise", "recognize"},
      {"recognised", "recognized"}, {"recognising", "recognizing"}, {"recognises", "recognizes"},
      {"rumoured", "rumored"}, {"rumouring", "rumoring"}, {"savour", "savor"}, {"savours", "savors"},
      {"savoured", "savored"}, {"savouring", "savoring"}, {"splendour", "splendor"},
      {"splendours", "splendors"}, {"theatre", "theater"}, {"theatres", "theaters"}, {"titre", "titer"},
      {"titres", "titers"}, {"travelled", "traveled"}, {"travelling", "traveling"}};
  return map;
}

// Words the -our -> -or pattern leaves alone when they contain one of these.
constexpr std::array<std::string_view, 28> kOurExceptions = {
    "abatjour", "beflour", "bonjour", "calambour", "carrefour", "cornflour", "contour", "detour", "devour",
    "dortour", "dyvour", "downpour", "giaour", "glamour", "holour", "inpour", "outpour", "pandour",
    "paramour", "pompadour", "recontour", "repour", "ryeflour", "sompnour", "tambour", "troubadour",
    "tregetour", "velour"};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Java's String.length(): UTF-16 units. Tokens reaching here are BMP letters, one unit each.
size_t java_length(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// replaceAll("haem(at)?o", "hem$1o"): every "haemo" -> "hemo", "haemato" -> "hemato".
bool replace_haem(std::string& s) {
  std::string out;
  bool changed = false;
  size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 7, "haemato") == 0) {
      out += "hemato";
      i += 7;
      changed = true;
    } else if (s.compare(i, 5, "haemo") == 0) {
      out += "hemo";
      i += 5;
      changed = true;
    } else {
      out.push_back(s[i++]);
    }
  }
  if (changed) s = std::move(out);
  return changed;
}

bool replace_leukaem(std::string& s) {  // replaceAll("([lL])eukaem", "$1eukem")
  bool changed = false;
  for (size_t i = 0; (i = s.find("eukaem", i)) != std::string::npos;) {
    if (i > 0 && (s[i - 1] == 'l' || s[i - 1] == 'L')) {
      s.replace(i, 6, "eukem");
      changed = true;
      i += 5;
    } else {
      ++i;
    }
  }
  return changed;
}

bool is_ascii_lower(std::string_view s) {
  for (char c : s)
    if (c < 'a' || c > 'z') return false;
  return true;
}

}  // namespace

std::string americanize(const std::string& token) {
  const size_t length = java_length(token);
  if (length < kMinLengthChanged) return token;
  const auto& words = word_list();
  if (const auto it = words.find(token); it != words.end()) return std::string(it->second);
  if (length < kMinLengthPattern) return token;

  // The five patterns in CoreNLP's order; the first that matches (and is not excepted) wins.
  std::string s = token;
  if (replace_haem(s)) return s;
  if (ends_with(s, "aemia")) return s.substr(0, s.size() - 5) + "emia";
  if (replace_leukaem(s)) return s;
  if (ends_with(s, "programme")) return s.substr(0, s.size() - 2);
  if (ends_with(s, "programmes")) return s.substr(0, s.size() - 3) + "s";
  // ^([a-z]{3,})our(s?)$
  const bool plural = ends_with(s, "ours");
  const std::string_view stem = std::string_view(s).substr(0, s.size() - (plural ? 4 : 3));
  if ((plural || ends_with(s, "our")) && stem.size() >= 3 && is_ascii_lower(stem)) {
    for (std::string_view ex : kOurExceptions)
      if (s.find(ex) != std::string::npos) return token;
    return std::string(stem) + "or" + (plural ? "s" : "");
  }
  return token;
}

}  // namespace clipcap
