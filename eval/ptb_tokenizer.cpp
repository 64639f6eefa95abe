#include "eval/ptb_tokenizer.h"

#include "eval/americanize.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>

namespace clipcap {
namespace {

// ---- UTF-8 <-> code points -----------------------------------------------------------------

std::u32string decode_utf8(std::string_view in) {
  std::u32string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    const auto b = static_cast<unsigned char>(in[i]);
    const int extra = b < 0x80 ? 0 : (b >> 5) == 6 ? 1 : (b >> 4) == 14 ? 2 : (b >> 3) == 30 ? 3 : -1;
    char32_t cp = extra == 0 ? b : extra == 1 ? (b & 0x1F) : extra == 2 ? (b & 0x0F) : (b & 0x07);
    bool ok = extra >= 0;
    for (int k = 1; ok && k <= extra; ++k) {
      const auto c = i + k < in.size() ? static_cast<unsigned char>(in[i + k]) : 0;
      ok = (c >> 6) == 2;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (!ok) {  // Java's decoder replaces a malformed byte with U+FFFD and goes on
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += extra + 1;
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// ---- character classes (JFlex 1.4 saw UTF-16 units: nothing above the BMP is a letter) ------

bool in_bmp(char32_t c) { return c <= 0xFFFF; }
bool is_ascii_alpha(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ascii_upper(char32_t c) { return c >= 'A' && c <= 'Z'; }
bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_ascii_alnum(char32_t c) { return is_ascii_alpha(c) || is_ascii_digit(c); }
bool is_letter(char32_t c) {  // [:letter:] = Java Character.isLetter
  if (c < 0x80) return is_ascii_alpha(c);
  return in_bmp(c) && u_isalpha(static_cast<UChar32>(c));
}
bool is_digit(char32_t c) {  // [:digit:] = Java Character.isDigit
  if (c < 0x80) return is_ascii_digit(c);
  return in_bmp(c) && u_isdigit(static_cast<UChar32>(c));
}
bool is_letter_or_digit(char32_t c) { return is_letter(c) || is_digit(c); }
// {WORD}: letters, soft hyphen and (approximately) the combining marks PTBLexer lists.
bool is_word_char(char32_t c) {
  if (is_letter(c) || c == 0xAD) return true;
  if (c < 0x300 || !in_bmp(c)) return false;
  const auto t = u_charType(static_cast<UChar32>(c));
  return t == U_NON_SPACING_MARK || t == U_COMBINING_SPACING_MARK;
}
bool is_apos(char32_t c) { return c == '\'' || c == 0x92 || c == 0x2019; }
bool is_apos_etc(char32_t c) { return is_apos(c) || c == 0x91 || c == 0x2018 || c == 0x201B; }
bool is_hyphen(char32_t c) { return c == '-' || c == '_' || c == 0x58A || c == 0x2010 || c == 0x2011; }
bool is_space(char32_t c) { return c == ' ' || c == '\t' || c == 0xA0 || (c >= 0x2000 && c <= 0x200A) || c == 0x3000; }
bool is_one_of(char32_t c, std::string_view set) { return c != 0 && c < 0x80 && set.find(static_cast<char>(c)) != std::string_view::npos; }
bool is_vowel_y(char32_t c) { return is_one_of(c, "aeiouyAEIOUY"); }
bool is_insentp(char32_t c) { return c == ',' || c == ';' || c == ':' || c == 0x3001; }
char32_t fold(char32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

bool is_misc_symbol(char32_t c) {
  static constexpr std::array<std::pair<char32_t, char32_t>, 32> ranges{{
      {'+', '+'}, {'%', '%'}, {'&', '&'}, {'~', '~'}, {'^', '^'}, {'|', '|'}, {'\\', '\\'},
      {0xA6, 0xA9}, {0xAC, 0xAC}, {0xAE, 0xAF}, {0xB0, 0xBA}, {0xD7, 0xD7}, {0xF7, 0xF7},
      {0x2016, 0x2017}, {0x2020, 0x2023}, {0x2030, 0x2038}, {0x203B, 0x203B}, {0x203E, 0x2042},
      {0x2044, 0x2044}, {0x207A, 0x207F}, {0x208A, 0x208E}, {0x2100, 0x214F}, {0x2190, 0x21FF},
      {0x2200, 0x2BFF}, {0x3012, 0x3012}, {0x30FB, 0x30FB}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF20},
      {0xFF3B, 0xFF40}, {0xFF5B, 0xFF65}, {0x0387, 0x0387}, {0x0964, 0x0965}}};
  for (const auto& [lo, hi] : ranges)
    if (c >= lo && c <= hi) return true;
  return false;
}

// ---- one lexer pass ---------------------------------------------------------------------------

const std::u32string kNewline = U"\n";

class PtbLexer {
 public:
  PtbLexer(std::u32string text, const PtbTokenizerOptions& options) : s_(std::move(text)), opt_(options) {}

  std::vector<std::string> run() {
    std::vector<std::string> tokens;
    size_t i = 0;
    while (i < s_.size()) {
      Match m = longest_at(i);
      if (m.len == 0) {  // untokenizable character: deleted
        ++i;
        continue;
      }
      const size_t consumed = m.emit_len ? m.emit_len : m.len;
      if (m.kind == Kind::Token) tokens.push_back(lower_utf8(m.text));
      if (m.kind == Kind::Newline) tokens.emplace_back("\n");
      i += consumed;
    }
    return tokens;
  }

 private:
  enum class Kind { Skip, Token, Newline };
  struct Match {
    size_t len = 0;       // length that competes for the longest match (includes trailing context)
    size_t emit_len = 0;  // characters actually consumed (0 = len)
    Kind kind = Kind::Skip;
    std::u32string text;
  };

  char32_t at(size_t i) const { return i < s_.size() ? s_[i] : 0; }
  bool has(size_t i) const { return i < s_.size(); }
  std::u32string sub(size_t i, size_t n) const { return s_.substr(i, n); }

  // Caseless literal (ASCII); a leading '=' makes the first character case-sensitive, as the
  // "[M]iss" character classes of PTBLexer do.
  size_t lit(size_t i, std::string_view l) const {
    bool exact_first = !l.empty() && l[0] == '=';
    if (exact_first) l.remove_prefix(1);
    for (size_t k = 0; k < l.size(); ++k) {
      const char32_t c = at(i + k);
      if (!has(i + k)) return 0;
      const char32_t want = static_cast<unsigned char>(l[k]);
      if (k == 0 && exact_first ? c != want : fold(c) != fold(want)) return 0;
    }
    return l.size();
  }
  size_t any_lit(size_t i, std::initializer_list<std::string_view> alts) const {
    size_t best = 0;
    for (auto a : alts) best = std::max(best, lit(i, a));
    return best;
  }

  size_t run_of(size_t i, bool (*pred)(char32_t)) const {
    size_t j = i;
    while (has(j) && pred(s_[j])) ++j;
    return j - i;
  }

  // ---- macros: each returns the longest match length at i (0 = none) ----

  size_t word(size_t i) const { return run_of(i, is_word_char); }

  size_t redaux(size_t i) const {  // {APOS}([msdMSD]|re|ve|ll)
    if (!is_apos(at(i))) return 0;
    const size_t two = any_lit(i + 1, {"re", "ve", "ll"});
    if (two) return 1 + two;
    const char32_t c = fold(at(i + 1));
    return (c == 'm' || c == 's' || c == 'd') ? 2 : 0;
  }
  size_t sredaux(size_t i) const {  // n{APOSETCETERA}t
    return (fold(at(i)) == 'n' && is_apos_etc(at(i + 1)) && fold(at(i + 2)) == 't') ? 3 : 0;
  }

  size_t num(size_t i) const {  // {DIGIT}+|{DIGIT}*([.:,\u00AD\u066B\u066C]{DIGIT}+)+
    size_t j = i + run_of(i, is_digit);
    for (;;) {
      const char32_t c = at(j);
      const bool sep = c == '.' || c == ':' || c == ',' || c == 0xAD || c == 0x66B || c == 0x66C;
      if (!sep || !is_digit(at(j + 1))) break;
      j += 1 + run_of(j + 1, is_digit);
    }
    return j - i;
  }
  size_t number(size_t i) const {
    const size_t sign = (at(i) == '-' || at(i) == '+') ? 1 : 0;
    const size_t n = num(i + sign);
    return n ? sign + n : 0;
  }
  size_t digits_between(size_t i, size_t lo, size_t hi) const {  // {DIGIT}{lo,hi}, longest
    const size_t n = std::min(run_of(i, is_digit), hi);
    return n >= lo ? n : 0;
  }
  size_t date(size_t i) const {  // {DIGIT}{1,2}[\-\/]{DIGIT}{1,2}[\-\/]{DIGIT}{2,4}
    size_t a = run_of(i, is_digit);
    if (a < 1 || a > 2 || (at(i + a) != '-' && at(i + a) != '/')) return 0;
    size_t j = i + a + 1, b = run_of(j, is_digit);
    if (b < 1 || b > 2 || (at(j + b) != '-' && at(j + b) != '/')) return 0;
    j += b + 1;
    size_t c = std::min<size_t>(run_of(j, is_digit), 4);
    return c >= 2 ? j + c - i : 0;
  }
  size_t frac_tail(size_t i) const {  // {DIGIT}{1,4}(\\?\/|\u2044){DIGIT}{1,4}
    size_t a = run_of(i, is_digit);
    if (a < 1 || a > 4) return 0;
    size_t j = i + a;
    if (at(j) == '\\' && at(j + 1) == '/') j += 2;
    else if (at(j) == '/' || at(j) == 0x2044) j += 1;
    else return 0;
    size_t b = digits_between(j, 1, 4);
    return b ? j + b - i : 0;
  }
  size_t frac(size_t i) const {  // ({DIGIT}{1,4}[- \u00A0])?FRACTAIL
    size_t best = frac_tail(i);
    size_t a = run_of(i, is_digit);
    if (a >= 1 && a <= 4) {
      const char32_t c = at(i + a);
      if (c == '-' || c == ' ' || c == 0xA0) {
        size_t t = frac_tail(i + a + 1);
        if (t) best = std::max(best, a + 1 + t);
      }
    }
    return best;
  }

  // ACRO = [A-Za-z](\.[A-Za-z])+|(Canada|Sino|Korean|EU|Japan|non)-U\.S|U\.S\.-(U\.K|U\.S\.S\.R)
  size_t acro(size_t i) const {
    size_t best = 0;
    if (is_ascii_alpha(at(i))) {
      size_t j = i + 1;
      while (at(j) == '.' && is_ascii_alpha(at(j + 1))) j += 2;
      if (j - i >= 3) best = j - i;
    }
    for (auto p : {"canada", "sino", "korean", "eu", "japan", "non"}) {
      const size_t n = lit(i, p);
      if (n && lit(i + n, "-u.s")) best = std::max(best, n + 4);
    }
    if (lit(i, "u.s.-")) {
      const size_t n = any_lit(i + 5, {"u.k", "u.s.s.r"});
      if (n) best = std::max(best, 5 + n);
    }
    return best;
  }
  // Longest alternative of `alts` that is followed by '.' (the period not counted). Undotted
  // alternatives can only match the whole ASCII letter run, which makes the lists cheap to skip.
  size_t before_period(size_t i, const std::string_view* alts, size_t n_alts) const {
    const size_t letters = run_of(i, is_ascii_alpha);
    if (!letters) return 0;
    const bool period_after_letters = at(i + letters) == '.';
    if (!period_after_letters && at(i + 1) != '.' && at(i + 2) != '.') return 0;
    size_t best = 0;
    for (size_t k = 0; k < n_alts; ++k) {
      const std::string_view a = alts[k];
      const bool whole_run = period_after_letters && a.size() - (a[0] == '=') == letters;
      const bool dotted = a.size() > 2 && (a[1] == '.' || a[2] == '.');  // a.k.a ed.d ph.d
      if (!whole_run && !dotted) continue;
      const size_t n = lit(i, a);
      if (n && at(i + n) == '.') best = std::max(best, n);
    }
    return best;
  }
  // {ABBREV4} followed by '.', i.e. the text of {ABBREV2} without its period.
  size_t abbrev4_before_period(size_t i) const {
    static constexpr std::string_view kAlternatives[] = {
        "mr", "mrs", "ms", "=Miss", "dr", "drs", "prof", "profs", "sen", "sens", "rep", "reps", "atty", "attys",
        "lt", "col", "gen", "messrs", "gov", "govs", "adm", "rev", "maj", "sgt", "cpl", "pvt", "mt", "capt", "st",
        "ste", "ave", "pres", "lieut", "hon", "brig", "cmdr", "comdr", "pfc", "spc", "supt", "supts", "det", "vs",
        "alex", "wm", "jos", "cie", "a.k.a", "cf", "treas", "invt", "elec", "natl", "mfg", "mtg"};
    size_t best = is_ascii_alpha(at(i)) && at(i + 1) == '.' ? 1 : 0;
    best = std::max(best, before_period(i, kAlternatives, std::size(kAlternatives)));
    const size_t ac = acro(i);
    if (ac && at(i + ac) == '.') best = std::max(best, ac);
    return best;
  }
  size_t abbrev1(size_t i) const {  // ({ABMONTH}|{ABDAYS}|{ABSTATE}|{ABCOMP}|{ABNUM}|{ABPTIT}|etc|al|seq)\.
    static constexpr std::string_view kAlternatives[] = {
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
        "mon", "tue", "tues", "wed", "thu", "thurs", "fri",
        "ala", "ariz", "=Ark", "calif", "colo", "conn", "dak", "del", "fla", "ga", "=Ill", "ind", "kan",
        "kans", "ky", "la", "=Mass", "md", "mich", "minn", "=Miss", "mo", "mont", "neb", "nev", "okla",
        "=Ore", "pa", "penn", "tenn", "tex", "va", "vt", "=Wash", "wis", "wisc", "wyo",
        "inc", "co", "cos", "corp", "pty", "ptys", "ppty", "pptys", "ltd", "plc", "bancorp", "dept", "bhd",
        "assn", "univ", "intl", "sys",
        "no", "nos", "prop", "ph", "tel", "est", "ext", "sq", "ft",
        "jr", "sr", "bros", "ed.d", "ph.d", "blvd", "rd", "esq", "etc", "al", "seq"};
    const size_t n = before_period(i, kAlternatives, std::size(kAlternatives));
    return n ? n + 1 : 0;
  }

  // THING = ([dDoOlL]{APOSETCETERA}([:letter:]|[:digit:]))?([:letter:]|[:digit:])+
  //         ({HYPHEN}([dDoOlL]{APOSETCETERA}([:letter:]|[:digit:]))?([:letter:]|[:digit:])+)*
  size_t thing_piece(size_t i) const {
    size_t best = run_of(i, is_letter_or_digit);
    const char32_t c = at(i);
    if ((c == 'd' || c == 'D' || c == 'o' || c == 'O' || c == 'l' || c == 'L') && is_apos_etc(at(i + 1)) &&
        is_letter_or_digit(at(i + 2))) {
      const size_t rest = run_of(i + 3, is_letter_or_digit);
      if (rest) best = std::max(best, 3 + rest);
    }
    return best;
  }
  size_t thing(size_t i) const {
    size_t n = thing_piece(i);
    if (!n) return 0;
    size_t j = i + n;
    while (is_hyphen(at(j))) {
      size_t p = thing_piece(j + 1);
      if (!p) break;
      j += 1 + p;
    }
    return j - i;
  }
  // HTHING = [A-Za-z0-9][A-Za-z0-9.,\u00AD]*(-([A-Za-z0-9\u00AD]+|{ACRO}\.))+
  size_t hthing_groups(size_t j) const {  // longest (-(...))* from j
    if (at(j) != '-') return 0;
    size_t best = 0;
    auto alnum_sh = [](char32_t c) { return is_ascii_alnum(c) || c == 0xAD; };
    size_t a = run_of(j + 1, alnum_sh);
    if (a) best = std::max(best, 1 + a + hthing_groups(j + 1 + a));
    size_t r = acro(j + 1);
    if (r && at(j + 1 + r) == '.') best = std::max(best, 1 + r + 1 + hthing_groups(j + 2 + r));
    return best;
  }
  size_t hthing(size_t i) const {
    if (!is_ascii_alnum(at(i))) return 0;
    auto body = [](char32_t c) { return is_ascii_alnum(c) || c == '.' || c == ',' || c == 0xAD; };
    // The prefix cannot contain '-', so it is the whole run and the groups start right after it.
    const size_t n = 1 + run_of(i + 1, body);
    const size_t g = hthing_groups(i + n);
    return g ? n + g : 0;
  }
  // THING3 = [A-Za-z0-9]+(-[A-Za-z]+){0,2}(\\?\/[A-Za-z0-9]+(-[A-Za-z]+){0,2}){1,2}
  size_t hyphen_alpha_groups(size_t j) const {
    size_t start = j;
    for (int g = 0; g < 2; ++g) {
      if (at(j) != '-') break;
      size_t a = run_of(j + 1, is_ascii_alpha);
      if (!a) break;
      j += 1 + a;
    }
    return j - start;
  }
  size_t thing3(size_t i) const {
    size_t n = run_of(i, is_ascii_alnum);
    if (!n) return 0;
    size_t j = i + n;
    j += hyphen_alpha_groups(j);
    int parts = 0;
    while (parts < 2) {
      size_t k = j;
      if (at(k) == '\\' && at(k + 1) == '/') k += 2;
      else if (at(k) == '/') k += 1;
      else break;
      size_t a = run_of(k, is_ascii_alnum);
      if (!a) break;
      j = k + a;
      j += hyphen_alpha_groups(j);
      ++parts;
    }
    return parts ? j - i : 0;
  }
  size_t thinga(size_t i) const {  // [A-Z]+(([+&]|&amp;)[A-Z]+)+
    size_t n = run_of(i, is_ascii_upper);
    if (!n) return 0;
    size_t j = i + n;
    int parts = 0;
    for (;;) {
      size_t k = j;
      if (at(k) == '+' || at(k) == '&') {
        size_t amp = lit(k, "&amp;");
        k += amp ? amp : 1;
      } else {
        break;
      }
      size_t a = run_of(k, is_ascii_upper);
      if (!a) break;
      j = k + a;
      ++parts;
    }
    return parts ? j - i : 0;
  }

  size_t apoword(size_t i) const {
    size_t best = 0;
    const char32_t c0 = at(i);
    if (is_apos(c0)) {
      if (fold(at(i + 1)) == 'n') best = std::max<size_t>(best, is_apos(at(i + 2)) ? 3 : 2);
      if (lit(i + 1, "em")) best = std::max<size_t>(best, 3);
      if (at(i + 1) >= '2' && at(i + 1) <= '9' && at(i + 2) == '0' && fold(at(i + 3)) == 's') best = std::max<size_t>(best, 4);
      if (lit(i + 1, "til")) best = std::max<size_t>(best, fold(at(i + 4)) == 'l' ? 5 : 4);
      if (lit(i + 1, "cause")) best = std::max<size_t>(best, 6);
    }
    if ((c0 == 'l' || c0 == 'L' || c0 == 'd' || c0 == 'D' || c0 == 'j' || c0 == 'J') && is_apos(at(i + 1)))
      best = std::max<size_t>(best, 2);
    for (auto w : {"dunkin", "somethin", "ol"}) {
      size_t n = lit(i, w);
      if (n && is_apos(at(i + n))) best = std::max(best, n + 1);
    }
    // [A-HJ-XZn]{APOSETCETERA}[:letter:]{2}[:letter:]*
    const bool first_ok = (c0 >= 'A' && c0 <= 'H') || (c0 >= 'J' && c0 <= 'X') || c0 == 'Z' || c0 == 'n';
    if (first_ok && is_apos_etc(at(i + 1))) {
      size_t n = run_of(i + 2, is_letter);
      if (n >= 2) best = std::max(best, 2 + n);
    }
    // [:letter:][:letter:]*[aeiouyAEIOUY]{APOSETCETERA}[aeiouA-Z][:letter:]*
    {
      size_t n = run_of(i, is_letter);
      if (n >= 2 && is_vowel_y(at(i + n - 1)) && is_apos_etc(at(i + n))) {
        const char32_t c = at(i + n + 1);
        const bool next_ok = is_one_of(c, "aeiou") || is_ascii_upper(c);
        if (next_ok) best = std::max(best, n + 2 + run_of(i + n + 2, is_letter));
      }
    }
    size_t n = lit(i, "cont'd");
    if (n) best = std::max(best, at(i + n) == '.' ? n + 1 : n);
    best = std::max(best, any_lit(i, {"'twas", "nor'easter", "c'mon", "e'er", "s'mores", "ev'ry", "li'l", "nat'l"}));
    return best;
  }

  // URL tails: [^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-]
  static bool url_body(char32_t c) {
    return !(c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == '"' || c == '<' || c == '>' ||
             c == '|' || c == '(' || c == ')');
  }
  static bool url_end(char32_t c) {
    return url_body(c) && !(c == '.' || c == '!' || c == '?' || c == '{' || c == '}' || c == ',' || c == '-');
  }
  size_t url_tail(size_t j) const {  // longest match of the two-part tail at j (needs >= 2 chars)
    size_t n = run_of(j, url_body);
    while (n >= 2 && !url_end(at(j + n - 1))) --n;
    return n >= 2 ? n : 0;
  }
  size_t full_url(size_t i) const {
    size_t n = any_lit(i, {"http://", "https://"});
    if (!n) return 0;
    size_t t = url_tail(i + n);
    return t ? n + t : 0;
  }
  size_t likely_url(size_t i) const {
    size_t host = 0;
    // www\.([^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4}
    if (lit(i, "www.")) {
      auto seg = [](char32_t c) {
        return url_body(c) && !(c == '.' || c == '!' || c == '?' || c == '{' || c == '}' || c == ',');
      };
      size_t j = i + 4, last_dot_end = 0;
      for (;;) {
        size_t n = run_of(j, seg);
        if (!n || at(j + n) != '.') break;
        j += n + 1;
        last_dot_end = j;
      }
      if (last_dot_end) {
        // The final [a-zA-Z]{2,4} can also be a prefix of a segment we took as "x." — keep simple:
        size_t a = std::min<size_t>(run_of(last_dot_end, is_ascii_alpha), 4);
        if (a >= 2) host = last_dot_end + a - i;
      }
    }
    // ([^ \t\n\f\r\"`'<>|.!?(){},-_$]+\.)+(com|net|org|edu)
    auto seg2 = [](char32_t c) {
      if (c >= ',' && c <= '_') return false;
      return url_body(c) && !(c == '`' || c == '\'' || c == '.' || c == '!' || c == '?' || c == '{' || c == '}' ||
                              c == '$');
    };
    {
      size_t j = i;
      for (;;) {
        size_t n = run_of(j, seg2);
        if (!n || at(j + n) != '.') break;
        j += n + 1;
        size_t tld = any_lit(j, {"com", "net", "org", "edu"});
        if (tld) host = std::max(host, j + tld - i);
      }
    }
    if (!host) return 0;
    if (at(i + host) == '/') {
      size_t t = url_tail(i + host + 1);
      if (t) return host + 1 + t;
    }
    return host;
  }
  size_t email(size_t i) const {
    if (!is_ascii_alnum(at(i))) return 0;
    auto p = [](char32_t c) { return url_body(c) && c != 0xA0; };
    auto d = [](char32_t c) { return url_body(c) && c != 0xA0 && c != '.'; };
    const size_t n = run_of(i, p);
    size_t best = 0;
    for (size_t a = i + 1; a < i + n; ++a) {
      if (s_[a] != '@') continue;
      size_t j = a + 1, end = 0;
      while (j < i + n) {
        size_t seg = 0;
        while (j + seg < i + n && d(s_[j + seg])) ++seg;
        if (!seg) break;
        end = j + seg;
        if (j + seg < i + n && s_[j + seg] == '.') j += seg + 1;
        else break;
      }
      if (end) best = std::max(best, end - i);
    }
    return best;
  }
  size_t twitter(size_t i) const {
    if (at(i) == '@' && (is_ascii_alpha(at(i + 1)) || at(i + 1) == '_'))
      return 2 + run_of(i + 2, [](char32_t c) { return is_ascii_alnum(c) || c == '_'; });
    if (at(i) == '#') {
      size_t w = word(i + 1);
      return w ? 1 + w : 0;
    }
    return 0;
  }
  size_t sgml(size_t i) const {  // <\/?[A-Za-z!?][^>\r\n]*>
    if (at(i) != '<') return 0;
    size_t j = i + 1;
    if (at(j) == '/') ++j;
    if (!(is_ascii_alpha(at(j)) || at(j) == '!' || at(j) == '?')) return 0;
    ++j;
    while (has(j) && s_[j] != '>' && s_[j] != '\r' && s_[j] != '\n') ++j;
    return at(j) == '>' ? j + 1 - i : 0;
  }
  size_t newline(size_t i) const {
    const char32_t c = at(i);
    if (c == '\r') return at(i + 1) == '\n' ? 2 : 1;
    return (c == '\n' || c == 0x2028 || c == 0x2029 || c == 0x0B || c == 0x0C) ? 1 : 0;
  }
  // PHONE = (\([0-9]{2,3}\)[ \u00A0]?|(\+\+?)?([0-9]{2,4}[\- \u00A0])?[0-9]{2,4}[\- \u00A0])[0-9]{3,4}[\- \u00A0]?[0-9]{3,5}
  //       |((\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}
  // Matched as a set of reachable end positions (an NFA walk), so the longest match comes out.
  using Ends = std::vector<size_t>;
  Ends digits(const Ends& from, size_t lo, size_t hi) const {
    Ends out;
    for (size_t p : from) {
      const size_t n = std::min(run_of(p, is_ascii_digit), hi);
      for (size_t k = lo; k <= n; ++k) out.push_back(p + k);
    }
    return out;
  }
  Ends one_of(const Ends& from, bool (*pred)(char32_t), bool optional) const {
    Ends out;
    for (size_t p : from) {
      if (optional) out.push_back(p);
      if (has(p) && pred(s_[p])) out.push_back(p + 1);
    }
    return out;
  }
  static Ends merged(Ends a, const Ends& b) {
    a.insert(a.end(), b.begin(), b.end());
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
    return a;
  }
  size_t phone(size_t i) const {
    if (!is_ascii_digit(at(i)) && at(i) != '(' && at(i) != '+') return 0;
    auto sep = [](char32_t c) { return c == '-' || c == ' ' || c == 0xA0; };
    auto plus = [](char32_t c) { return c == '+'; };
    auto dot = [](char32_t c) { return c == '.'; };
    const Ends start{i};
    // \([0-9]{2,3}\)[ \u00A0]?
    Ends paren = one_of(digits(one_of(start, [](char32_t c) { return c == '('; }, false), 2, 3),
                        [](char32_t c) { return c == ')'; }, false);
    paren = one_of(paren, [](char32_t c) { return c == ' ' || c == 0xA0; }, true);
    // (\+\+?)?([0-9]{2,4}[\- \u00A0])?[0-9]{2,4}[\- \u00A0]
    const Ends plussed = one_of(one_of(start, plus, true), plus, true);
    const Ends group = merged(plussed, one_of(digits(plussed, 2, 4), sep, false));
    const Ends prefix = merged(paren, one_of(digits(group, 2, 4), sep, false));
    const Ends a = digits(one_of(digits(prefix, 3, 4), sep, true), 3, 5);
    // ((\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}
    const Ends lead = merged(start, one_of(digits(plussed, 2, 4), dot, false));
    const Ends b = digits(one_of(digits(one_of(digits(lead, 2, 4), dot, false), 3, 4), dot, false), 3, 5);
    size_t best = 0;
    for (size_t p : merged(a, b)) best = std::max(best, p - i);
    return best;
  }
  size_t ldots(size_t i) const {  // \.{3,5}|(\.[ \u00A0]){2,4}\.|[\u0085\u2026]
    if (at(i) == 0x85 || at(i) == 0x2026) return 1;
    size_t best = 0;
    size_t n = std::min<size_t>(run_of(i, [](char32_t c) { return c == '.'; }), 5);
    if (n >= 3) best = n;
    size_t j = i, pairs = 0;
    while (pairs < 4 && at(j) == '.' && (at(j + 1) == ' ' || at(j + 1) == 0xA0)) {
      j += 2;
      ++pairs;
      if (pairs >= 2 && at(j) == '.') best = std::max(best, j + 1 - i);
    }
    return best;
  }

  // ---- token text transforms ----

  static std::u32string remove_soft_hyphens(std::u32string t) {
    std::u32string out;
    for (char32_t c : t)
      if (c != 0xAD) out.push_back(c);
    return out.empty() ? U"-" : out;
  }
  std::u32string escape(std::u32string t, char32_t what) const {  // PTBLexer's delimit()
    if (!opt_.escape_forward_slash_asterisk) return t;
    std::u32string out;
    for (size_t k = 0; k < t.size(); ++k) {
      if (t[k] == what && (k == 0 || t[k - 1] != '\\')) out.push_back('\\');
      out.push_back(t[k]);
    }
    return out;
  }
  static std::u32string normalize_amp(const std::u32string& t) {
    std::u32string out;
    for (size_t k = 0; k < t.size(); ++k) {
      if (t[k] == '&' && t.size() - k >= 5 && fold(t[k + 1]) == 'a' && fold(t[k + 2]) == 'm' &&
          fold(t[k + 3]) == 'p' && t[k + 4] == ';') {
        out.push_back('&');
        k += 4;
      } else {
        out.push_back(t[k]);
      }
    }
    return out;
  }
  static std::u32string latex_quotes(const std::u32string& t, bool probably_left) {
    std::u32string out;
    for (size_t k = 0; k < t.size(); ++k) {
      const char32_t c = t[k];
      if (c == '&' && t.compare(k, 6, U"&apos;") == 0) {
        out += probably_left ? U"`" : U"'";
        k += 5;
      } else if (c == '&' && t.compare(k, 6, U"&quot;") == 0) {
        out += probably_left ? U"``" : U"''";
        k += 5;
      } else if (c == '\'') {
        out += probably_left ? U"`" : U"'";
      } else if (c == '"') {
        out += probably_left ? U"``" : U"''";
      } else if (c == 0x91 || c == 0x2018 || c == 0x201B || c == 0x2039) {
        out += U"`";
      } else if (c == 0x92 || c == 0x2019 || c == 0x203A) {
        out += U"'";
      } else if (c == 0x93 || c == 0x201C || c == 0xAB) {
        out += U"``";
      } else if (c == 0x94 || c == 0x201D || c == 0xBB) {
        out += U"''";
      } else {
        out.push_back(c);
      }
    }
    return out;
  }

  // A {WORD} token: soft hyphens removed, then (option) respelled American, as PTBLexer did.
  std::u32string word_text(size_t i, size_t w) const {
    std::u32string t = remove_soft_hyphens(sub(i, w));
    if (!opt_.americanize) return t;
    std::string utf8;
    for (char32_t ch : t) append_utf8(utf8, ch);
    const std::string am = americanize(utf8);
    return am == utf8 ? t : decode_utf8(am);
  }

  static std::string lower_utf8(const std::u32string& t) {
    std::string out;
    for (char32_t c : t) {
      if (c < 0x80) c = fold(c);
      else if (in_bmp(c)) c = static_cast<char32_t>(u_tolower(static_cast<UChar32>(c)));
      append_utf8(out, c);
    }
    return out;
  }

  // ---- the rules, in PTBLexer's order; the longest match wins, ties go to the earlier rule ----

  Match longest_at(size_t i) const {
    Match best;
    auto offer = [&](size_t len, Kind kind, auto make_text, size_t emit_len = 0) {
      if (len > best.len) {
        best.len = len;
        best.emit_len = emit_len;
        best.kind = kind;
        best.text = kind == Kind::Token ? make_text() : std::u32string();
      }
    };
    auto as_is = [&](size_t len) { return [this, i, len] { return sub(i, len); }; };
    const char32_t c = at(i);

    // cannot -> can not: the only split of this kind in 3.4.1 ("gonna" and "'tis" stay whole;
    // assimilation splitting came later, and off by default).
    if (size_t n = lit(i, "cannot")) offer(n, Kind::Token, as_is(3), 3);
    if (size_t n = sgml(i)) {
      offer(n, Kind::Token, [this, i, n] {
        std::u32string t = sub(i, n);
        std::replace(t.begin(), t.end(), U' ', char32_t(0xA0));
        return t;
      });
    }
    {  // {SPMDASH}
      size_t n = any_lit(i, {"&mdash;", "&ndash;", "&md;"});
      if (c == 0x96 || c == 0x97 || c == 0x2013 || c == 0x2014 || c == 0x2015) n = std::max<size_t>(n, 1);
      if (n) offer(n, Kind::Token, [] { return std::u32string(U"--"); });
    }
    if (size_t n = lit(i, "&amp;")) offer(n, Kind::Token, [] { return std::u32string(U"&"); });
    if (c == '&') {  // {SPPUNC}
      size_t n = any_lit(i, {"&ht;", "&tl;", "&ur;", "&lr;", "&qc;", "&ql;", "&qr;", "&odq;", "&cdq;"});
      if (at(i + 1) == '#') {
        size_t d = run_of(i + 2, is_ascii_digit);
        if (d && at(i + 2 + d) == ';') n = std::max(n, d + 3);
      }
      if (n) offer(n, Kind::Token, as_is(n));
    }
    const size_t w = word(i);
    if (w) {  // {WORD}/{REDAUX}
      size_t r = redaux(i + w);
      if (r) offer(w + r, Kind::Token, [this, i, w] { return word_text(i, w); }, w);
    }
    {  // {SWORD}/{SREDAUX}
      size_t n = run_of(i, [](char32_t x) { return is_ascii_alpha(x) || x == 0xAD; });
      if (n >= 2 && fold(at(i + n - 1)) == 'n' && is_apos_etc(at(i + n)) && fold(at(i + n + 1)) == 't') {
        size_t sw = n - 1;  // SWORD ends before the 'n'; its last letter (soft hyphens aside) is not n
        size_t k = sw;
        while (k > 0 && at(i + k - 1) == 0xAD) --k;
        if (k > 0 && is_ascii_alpha(at(i + k - 1)) && fold(at(i + k - 1)) != 'n')
          offer(sw + 3, Kind::Token, [this, i, sw] { return remove_soft_hyphens(sub(i, sw)); }, sw);
      }
    }
    if (w) offer(w, Kind::Token, [this, i, w] { return word_text(i, w); });
    if (size_t n = apoword(i)) offer(n, Kind::Token, as_is(n));
    if (fold(c) == 'y' && is_apos(at(i + 1)) && is_letter(at(i + 2))) offer(3, Kind::Token, as_is(2), 2);
    if (size_t n = full_url(i)) offer(n, Kind::Token, [this, i, n] { return escape(escape(sub(i, n), '/'), '*'); });
    if (size_t n = likely_url(i)) offer(n, Kind::Token, [this, i, n] { return escape(escape(sub(i, n), '/'), '*'); });
    if (size_t n = email(i)) offer(n, Kind::Token, as_is(n));
    if (size_t n = twitter(i)) offer(n, Kind::Token, as_is(n));
    if (size_t r = redaux(i)) {  // {REDAUX}/[^A-Za-z]
      if (has(i + r) && !is_ascii_alpha(at(i + r)))
        offer(r + 1, Kind::Token, [this, i, r] { return latex_quotes(sub(i, r), false); }, r);
    }
    if (sredaux(i)) offer(3, Kind::Token, [this, i] { return latex_quotes(sub(i, 3), false); });
    if (size_t n = date(i)) offer(n, Kind::Token, [this, i, n] { return escape(sub(i, n), '/'); });
    if (size_t n = number(i)) offer(n, Kind::Token, [this, i, n] { return remove_soft_hyphens(sub(i, n)); });
    if (size_t n = frac(i)) {
      offer(n, Kind::Token, [this, i, n] {
        std::u32string t = escape(sub(i, n), '/');
        std::replace(t.begin(), t.end(), U' ', char32_t(0xA0));
        return t;
      });
    }
    if (c == 0xBC || c == 0xBD || c == 0xBE || (c >= 0x2153 && c <= 0x215E)) {  // {FRAC2}
      offer(1, Kind::Token, [this, c] {
        const bool esc = opt_.escape_forward_slash_asterisk;
        if (c == 0xBC) return std::u32string(esc ? U"1\\/4" : U"1/4");
        if (c == 0xBD) return std::u32string(esc ? U"1\\/2" : U"1/2");
        if (c == 0xBE) return std::u32string(esc ? U"3\\/4" : U"3/4");
        if (c == 0x2153) return std::u32string(esc ? U"1\\/3" : U"1/3");
        return std::u32string(1, c);  // PTBLexer maps U+2153 twice and never U+2154 (its bug)
      });
    }
    {  // {TBSPEC}
      size_t n = any_lit(i, {"-rrb-", "-lrb-", "-rcb-", "-lcb-", "-rsb-", "-lsb-", "c.d.s", "pro-", "anti-",
                             "s&p-500", "s&amp;p-500", "s&ls", "s&amp;ls", "c'est", "cap'n"});
      if (n) offer(n, Kind::Token, [this, i, n] { return normalize_amp(sub(i, n)); });
    }
    if (size_t n = thing3(i)) offer(n, Kind::Token, [this, i, n] { return escape(sub(i, n), '/'); });
    {  // {DOLSIGN}
      size_t u = run_of(i, is_ascii_upper);
      if (at(i + u) == '$') offer(u + 1, Kind::Token, as_is(u + 1));
      if (c == '#') offer(1, Kind::Token, as_is(1));
    }
    if (c == 0xA2 || c == 0xA3 || c == 0xA4 || c == 0xA5 || c == 0x80 || c == 0x20A0 || c == 0x20AC || c == 0x60B ||
        c == 0xE3F || c == 0x20A4 || c == 0xFFE0 || c == 0xFFE1 || c == 0xFFE5 || c == 0xFFE6) {  // {DOLSIGN2}
      offer(1, Kind::Token, [c] {
        if (c == 0xA2) return std::u32string(U"cents");
        if (c == 0xA3) return std::u32string(U"#");
        if (c == 0x80 || c == 0xA4 || c == 0x20A0 || c == 0x20AC) return std::u32string(U"$");
        return std::u32string(1, c);
      });
    }
    // ACRONYM / ABBREV1 with sentence-end context only add a "." token, which the toolkit drops.
    if (size_t n = abbrev1(i)) offer(n, Kind::Token, as_is(n));
    if (is_ascii_alpha(c)) {
      if (size_t a4 = abbrev4_before_period(i)) offer(a4 + 1, Kind::Token, as_is(a4 + 1));  // {ABBREV2}
      // {ABBREV4}/{SPACE} gives the same text as {WORD} unless the abbreviation is an acronym,
      // and {ACRO}/{SPACENL} covers those.
      size_t ac = acro(i);
      if (ac && (is_space(at(i + ac)) || newline(i + ac))) offer(ac + 1, Kind::Token, as_is(ac), ac);
    }
    if (is_apos(c) && is_ascii_digit(at(i + 1)) && is_ascii_digit(at(i + 2)) && (is_space(at(i + 3)) || newline(i + 3)))
      offer(4, Kind::Token, as_is(3), 3);  // {TBSPEC2}/{SPACENL}
    if (w && at(i + w) == '.' && is_insentp(at(i + w + 1)))
      offer(w + 2, Kind::Token, [this, i, w] { return remove_soft_hyphens(sub(i, w + 1)); }, w + 1);
    if (size_t n = phone(i)) {  // {PHONE}: spaces become U+00A0, parentheses -LRB- / -RRB-
      offer(n, Kind::Token, [this, i, n] {
        std::u32string t;
        for (char32_t ch : sub(i, n)) {
          if (ch == '(') t += U"-LRB-";
          else if (ch == ')') t += U"-RRB-";
          else t.push_back(ch == ' ' ? char32_t(0xA0) : ch);
        }
        return t;
      });
    }
    if (c == '"' || lit(i, "&quot;")) {  // {DBLQUOT}
      size_t n = c == '"' ? 1 : 6;
      const char32_t nx = at(i + n);
      if (is_ascii_alnum(nx) || nx == '$') offer(n + 1, Kind::Token, [this, i, n] { return latex_quotes(sub(i, n), true); }, n);
      offer(n, Kind::Token, [this, i, n] { return latex_quotes(sub(i, n), false); });
    }
    if (c == '<' || c == '[' || lit(i, "&lt;")) offer(c == '&' ? 4 : 1, Kind::Token, [] { return std::u32string(U"-LRB-"); });
    if (c == '>' || c == ']' || lit(i, "&gt;")) offer(c == '&' ? 4 : 1, Kind::Token, [] { return std::u32string(U"-RRB-"); });
    if (c == '{') offer(1, Kind::Token, [] { return std::u32string(U"-LCB-"); });
    if (c == '}') offer(1, Kind::Token, [] { return std::u32string(U"-RCB-"); });
    if (c == '(') offer(1, Kind::Token, [] { return std::u32string(U"-LRB-"); });
    if (c == ')') offer(1, Kind::Token, [] { return std::u32string(U"-RRB-"); });
    if (c == '-') {  // {HYPHENS}: 3 or 4 hyphens are a PTB dash
      size_t n = run_of(i, [](char32_t x) { return x == '-'; });
      offer(n, Kind::Token, [this, i, n] { return (n == 3 || n == 4) ? std::u32string(U"--") : sub(i, n); });
    }
    if (size_t n = ldots(i)) offer(n, Kind::Token, [] { return std::u32string(U"..."); });
    if (c == '@' || c == '#' || c == '_') {  // {FNMARKS}
      size_t n = run_of(i, [](char32_t x) { return x == '@'; });
      n = std::max(n, run_of(i, [](char32_t x) { return x == '#'; }));
      n = std::max(n, run_of(i, [](char32_t x) { return x == '_'; }));
      offer(n, Kind::Token, as_is(n));
    }
    {  // {ASTS}
      size_t n = run_of(i, [](char32_t x) { return x == '*'; });
      size_t k = 0;
      while (k < 3 && at(i + 2 * k) == '\\' && at(i + 2 * k + 1) == '*') ++k;
      n = std::max(n, 2 * k);
      if (n) offer(n, Kind::Token, [this, i, n] { return escape(sub(i, n), '*'); });
    }
    if (is_insentp(c)) offer(1, Kind::Token, as_is(1));
    if (c == '?' || c == '!') {
      size_t n = run_of(i, [](char32_t x) { return x == '?' || x == '!'; });
      offer(n, Kind::Token, as_is(n));
    }
    if (c == '.' || c == 0xA1 || c == 0xBF || c == 0x37E || c == 0x589 || c == 0x61F || c == 0x6D4 ||
        (c >= 0x700 && c <= 0x702) || c == 0x7FA || c == 0x3002)
      offer(1, Kind::Token, as_is(1));
    if (c == '=') offer(1, Kind::Token, as_is(1));
    if (c == '/') offer(1, Kind::Token, [this, i] { return escape(sub(i, 1), '/'); });
    if (size_t n = hthing(i)) {
      if (at(i + n) == '.' && is_insentp(at(i + n + 1)))
        offer(n + 2, Kind::Token, [this, i, n] { return remove_soft_hyphens(sub(i, n + 1)); }, n + 1);
      offer(n, Kind::Token, [this, i, n] { return remove_soft_hyphens(sub(i, n)); });
    }
    if (size_t n = thing(i)) {
      if (at(i + n) == '.' && is_insentp(at(i + n + 1))) offer(n + 2, Kind::Token, as_is(n + 1), n + 1);
      offer(n, Kind::Token, as_is(n));
    }
    if (size_t n = thinga(i)) {
      if (at(i + n) == '.' && is_insentp(at(i + n + 1)))
        offer(n + 2, Kind::Token, [this, i, n] { return normalize_amp(sub(i, n + 1)); }, n + 1);
      offer(n, Kind::Token, [this, i, n] { return normalize_amp(sub(i, n)); });
    }
    if (c == '\'' && is_ascii_alpha(at(i + 1)) && has(i + 2)) {  // '/[A-Za-z][^ \t\n\r\u00A0]: opening quote
      const char32_t nx = at(i + 2);
      if (!(nx == ' ' || nx == '\t' || nx == '\n' || nx == '\r' || nx == 0xA0))
        offer(3, Kind::Token, [this, i] { return latex_quotes(sub(i, 1), true); }, 1);
    }
    if (size_t r = redaux(i)) offer(r, Kind::Token, [this, i, r] { return latex_quotes(sub(i, r), false); });
    {  // {QUOTES} = {APOS}|''|[`\u2018...]{1,2}
      auto q = [](char32_t x) {
        return x == '`' || (x >= 0x2018 && x <= 0x201F) || (x >= 0x91 && x <= 0x94) || x == 0x2039 || x == 0x203A ||
               x == 0xAB || x == 0xBB;
      };
      size_t n = 0;
      if (is_apos(c)) n = 1;
      if (c == '\'' && at(i + 1) == '\'') n = 2;
      if (q(c)) n = std::max<size_t>(n, q(at(i + 1)) ? 2 : 1);
      if (n) offer(n, Kind::Token, [this, i, n] { return latex_quotes(sub(i, n), false); });
    }
    if ((c == '<' && at(i + 1) == '<') || (c == '>' && at(i + 1) == '>')) offer(2, Kind::Token, as_is(2));
    if (is_misc_symbol(c)) offer(1, Kind::Token, as_is(1));
    if (c == 0 || is_space(c) || c == 0x200B || c == 0x200E || c == 0x200F || c == 0xFEFF) {
      size_t n = run_of(i, is_space);
      offer(std::max<size_t>(n, 1), Kind::Skip, [] { return std::u32string(); });
    }
    if (size_t n = newline(i)) offer(n, Kind::Newline, [] { return std::u32string(); });
    if (lit(i, "&nbsp;")) offer(6, Kind::Skip, [] { return std::u32string(); });
    return best;
  }

  std::u32string s_;
  PtbTokenizerOptions opt_;
};

}  // namespace

std::vector<std::string> ptb_tokenize(std::string_view text, const PtbTokenizerOptions& options) {
  return PtbLexer(decode_utf8(text), options).run();
}

bool is_coco_punctuation(std::string_view token) {
  static constexpr std::array<std::string_view, 17> kDropped{
      "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"};
  return std::find(kDropped.begin(), kDropped.end(), token) != kDropped.end();
}

std::vector<std::string> coco_tokenize(const std::vector<std::string>& captions, const PtbTokenizerOptions& options) {
  std::string joined;
  for (size_t k = 0; k < captions.size(); ++k) {
    if (k) joined.push_back('\n');
    for (char ch : captions[k]) joined.push_back(ch == '\n' ? ' ' : ch);
  }
  // One output line per newline token, tokens joined by single spaces, as PTBTokenizer
  // -preserveLines prints them; punctuation dropped per line as pycocoevalcap does.
  std::vector<std::string> lines(1);
  for (const std::string& tok : ptb_tokenize(joined, options)) {
    if (tok == "\n") {
      lines.emplace_back();
      continue;
    }
    if (is_coco_punctuation(tok)) continue;
    if (!lines.back().empty()) lines.back().push_back(' ');
    lines.back() += tok;
  }
  // zip(image_id, lines): extra lines are ignored, missing ones leave the caption empty.
  lines.resize(captions.size());
  return lines;
}

}  // namespace clipcap
