#include "eval/bleu.h"

#include <cmath>
#include <cstdlib>
#include <string_view>
#include <unordered_map>

#include "eval/caption_metrics.h"

namespace clipcap {
namespace {

constexpr int kMaxN = 4;
constexpr double kTiny = 1e-15;   // keeps a zero match count from giving log(0)
constexpr double kSmall = 1e-9;   // keeps a zero total from dividing by zero

using NgramCounts = std::unordered_map<std::string, int>;

NgramCounts count_ngrams(const std::vector<std::string>& words) {
  NgramCounts counts;
  for (int k = 1; k <= kMaxN; ++k) {
    for (size_t i = 0; i + k <= words.size(); ++i) {
      std::string key = words[i];
      for (int j = 1; j < k; ++j) key += ' ' + words[i + j];  // tokens never hold a space
      ++counts[key];
    }
  }
  return counts;
}

int ngram_order(const std::string& key) {
  int n = 1;
  for (char c : key) n += c == ' ';
  return n;
}

struct Cooked {
  long testlen = 0;
  long reflen = 0;  // the closest reference length
  std::array<long, kMaxN> guess{};
  std::array<long, kMaxN> correct{};
};

Cooked cook(const std::string& prediction, const std::vector<std::string>& references) {
  NgramCounts max_ref;
  std::vector<long> reflens;
  for (const std::string& ref : references) {
    const std::vector<std::string> words = split_python_whitespace(ref);
    reflens.push_back(static_cast<long>(words.size()));
    for (const auto& [ngram, count] : count_ngrams(words)) {
      int& m = max_ref[ngram];
      if (count > m) m = count;
    }
  }
  const std::vector<std::string> words = split_python_whitespace(prediction);
  Cooked c;
  c.testlen = static_cast<long>(words.size());
  // min((abs(l - testlen), l)): closest length, ties to the shorter.
  c.reflen = reflens.front();
  for (long l : reflens) {
    const long d = std::labs(l - c.testlen), best = std::labs(c.reflen - c.testlen);
    if (d < best || (d == best && l < c.reflen)) c.reflen = l;
  }
  for (int k = 0; k < kMaxN; ++k) c.guess[k] = std::max(0L, c.testlen - k);
  for (const auto& [ngram, count] : count_ngrams(words)) {
    const auto it = max_ref.find(ngram);
    const int m = it == max_ref.end() ? 0 : it->second;
    c.correct[ngram_order(ngram) - 1] += std::min(m, count);
  }
  return c;
}

// prod_{k<=n} (correct + tiny) / (guess + small), n-th root, times the brevity penalty.
std::array<double, kMaxN> bleu_from_counts(const std::array<long, kMaxN>& correct, const std::array<long, kMaxN>& guess,
                                           long testlen, long reflen) {
  std::array<double, kMaxN> out{};
  double product = 1.0;
  for (int k = 0; k < kMaxN; ++k) {
    product *= (static_cast<double>(correct[k]) + kTiny) / (static_cast<double>(guess[k]) + kSmall);
    out[k] = std::pow(product, 1.0 / (k + 1));
  }
  const double ratio = (static_cast<double>(testlen) + kTiny) / (static_cast<double>(reflen) + kSmall);
  if (ratio < 1) {
    for (double& b : out) b *= std::exp(1 - 1 / ratio);
  }
  return out;
}

}  // namespace

BleuScores bleu_scores(const std::vector<std::string>& predictions,
                       const std::vector<std::vector<std::string>>& references) {
  BleuScores scores;
  std::array<long, kMaxN> correct{}, guess{};
  long testlen = 0, reflen = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    const Cooked c = cook(predictions[i], references.at(i));
    testlen += c.testlen;
    reflen += c.reflen;
    for (int k = 0; k < kMaxN; ++k) {
      correct[k] += c.correct[k];
      guess[k] += c.guess[k];
    }
    scores.per_item.push_back(bleu_from_counts(c.correct, c.guess, c.testlen, c.reflen));
  }
  scores.corpus = bleu_from_counts(correct, guess, testlen, reflen);
  return scores;
}

}  // namespace clipcap
