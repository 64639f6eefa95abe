#include "eval/rouge.h"

#include <algorithm>
#include <string_view>

namespace clipcap {
namespace {

constexpr double kBeta = 1.2;  // the toolkit's choice: recall weighs 1.44x precision

// Python's s.split(" "): every single space separates, so empty parts survive.
std::vector<std::string_view> split_on_space(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    const size_t sp = s.find(' ', start);
    parts.push_back(s.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start));
    if (sp == std::string_view::npos) return parts;
    start = sp + 1;
  }
}

size_t lcs_length(const std::vector<std::string_view>& a, const std::vector<std::string_view>& b) {
  std::vector<size_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

double rouge_l(const std::string& candidate, const std::vector<std::string>& references) {
  const std::vector<std::string_view> cand = split_on_space(candidate);
  double prec_max = 0, rec_max = 0;
  for (const std::string& ref : references) {
    const std::vector<std::string_view> r = split_on_space(ref);
    const double lcs = static_cast<double>(lcs_length(r, cand));
    prec_max = std::max(prec_max, lcs / static_cast<double>(cand.size()));
    rec_max = std::max(rec_max, lcs / static_cast<double>(r.size()));
  }
  if (prec_max == 0 || rec_max == 0) return 0.0;
  const double b2 = kBeta * kBeta;
  return ((1 + b2) * prec_max * rec_max) / (rec_max + b2 * prec_max);
}

}  // namespace clipcap
