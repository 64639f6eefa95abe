#include "eval/cider.h"

#include <array>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "eval/caption_metrics.h"

namespace clipcap {
namespace {

constexpr int kMaxN = 4;
constexpr double kSigma = 6.0;

// n-gram counts in first-seen order (order 1 first), so sums run in the toolkit's dict order.
struct NgramCounts {
  std::vector<std::pair<std::string, int>> entries;
  std::unordered_map<std::string, size_t> index;
};

NgramCounts count_ngrams(const std::string& text) {
  const std::vector<std::string> words = split_python_whitespace(text);
  NgramCounts counts;
  for (int k = 1; k <= kMaxN; ++k) {
    for (size_t i = 0; i + k <= words.size(); ++i) {
      std::string key = words[i];
      for (int j = 1; j < k; ++j) key += ' ' + words[i + j];
      const auto [it, added] = counts.index.emplace(key, counts.entries.size());
      if (added) counts.entries.emplace_back(std::move(key), 0);
      ++counts.entries[it->second].second;
    }
  }
  return counts;
}

int ngram_order(const std::string& key) {
  int n = 1;
  for (char c : key) n += c == ' ';
  return n;
}

struct TfIdf {
  std::array<std::vector<std::pair<const std::string*, double>>, kMaxN> vec;  // ordered entries
  std::array<std::unordered_map<std::string_view, double>, kMaxN> lookup;
  std::array<double, kMaxN> norm{};
  long length = 0;  // the toolkit's "length": the number of bigrams
};

TfIdf to_vector(const NgramCounts& counts, const std::unordered_map<std::string, double>& df, double log_images) {
  TfIdf v;
  for (const auto& [ngram, tf] : counts.entries) {
    const auto it = df.find(ngram);
    const double d = std::log(std::max(1.0, it == df.end() ? 0.0 : it->second));
    const int n = ngram_order(ngram) - 1;
    const double w = static_cast<double>(tf) * (log_images - d);
    v.vec[n].emplace_back(&ngram, w);
    v.lookup[n][ngram] = w;
    v.norm[n] += std::pow(w, 2);
    if (n == 1) v.length += tf;
  }
  for (double& x : v.norm) x = std::sqrt(x);
  return v;
}

std::array<double, kMaxN> similarity(const TfIdf& hyp, const TfIdf& ref) {
  const double delta = static_cast<double>(hyp.length - ref.length);
  std::array<double, kMaxN> val{};
  for (int n = 0; n < kMaxN; ++n) {
    for (const auto& [ngram, w] : hyp.vec[n]) {
      const auto it = ref.lookup[n].find(*ngram);
      const double r = it == ref.lookup[n].end() ? 0.0 : it->second;
      val[n] += std::min(w, r) * r;  // clipped: repeating a reference n-gram earns nothing extra
    }
    if (hyp.norm[n] != 0 && ref.norm[n] != 0) val[n] /= hyp.norm[n] * ref.norm[n];
    val[n] *= std::pow(M_E, -(delta * delta) / (2 * kSigma * kSigma));
  }
  return val;
}

}  // namespace

std::vector<double> cider_d_scores(const std::vector<std::string>& predictions,
                                   const std::vector<std::vector<std::string>>& references) {
  std::vector<std::vector<NgramCounts>> refs(predictions.size());
  std::unordered_map<std::string, double> df;
  for (size_t i = 0; i < predictions.size(); ++i) {
    std::unordered_set<std::string> seen;
    for (const std::string& r : references.at(i)) {
      refs[i].push_back(count_ngrams(r));
      for (const auto& e : refs[i].back().entries) seen.insert(e.first);
    }
    for (const std::string& g : seen) df[g] += 1;
  }
  const double log_images = std::log(static_cast<double>(predictions.size()));

  std::vector<double> scores;
  for (size_t i = 0; i < predictions.size(); ++i) {
    const NgramCounts hyp_counts = count_ngrams(predictions[i]);
    const TfIdf hyp = to_vector(hyp_counts, df, log_images);
    std::array<double, kMaxN> sum{};
    for (const NgramCounts& r : refs[i]) {
      const std::array<double, kMaxN> s = similarity(hyp, to_vector(r, df, log_images));
      for (int n = 0; n < kMaxN; ++n) sum[n] += s[n];
    }
    double score = (((sum[0] + sum[1]) + sum[2]) + sum[3]) / kMaxN;  // np.mean of 4 values
    score /= static_cast<double>(refs[i].size());
    score *= 10.0;
    scores.push_back(score);
  }
  return scores;
}

}  // namespace clipcap
