#include "eval/caption_metrics.h"

#include <unordered_set>

#include "common/error.h"
#include "eval/bleu.h"
#include "eval/cider.h"
#include "eval/ptb_tokenizer.h"
#include "eval/rouge.h"

namespace clipcap {
namespace {

// Python 3's str.isspace() set, as UTF-8 sequences: what str.split() splits on.
size_t python_space_at(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b == ' ' || (b >= 0x09 && b <= 0x0D) || (b >= 0x1C && b <= 0x1F)) return 1;
  auto starts = [&](std::string_view seq) { return s.substr(i, seq.size()) == seq; };
  if (starts("\xC2\x85") || starts("\xC2\xA0")) return 2;
  for (std::string_view seq : {"\xE1\x9A\x80", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F",
                               "\xE3\x80\x80"})
    if (starts(seq)) return 3;
  if (starts("\xE2\x80") && s.size() > i + 2) {  // U+2000..U+200A
    const auto c = static_cast<unsigned char>(s[i + 2]);
    if (c >= 0x80 && c <= 0x8A) return 3;
  }
  return 0;
}

double pairwise_sum(const double* a, size_t n) {
  if (n < 8) {
    double res = 0.;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

}  // namespace

std::vector<std::string> split_python_whitespace(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  for (size_t i = 0; i < text.size();) {
    if (const size_t n = python_space_at(text, i)) {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
      i += n;
    } else {
      cur.push_back(text[i++]);
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

double numpy_mean(const std::vector<double>& values) {
  return pairwise_sum(values.data(), values.size()) / static_cast<double>(values.size());
}

namespace {

void score_bleu(const std::vector<std::string>& predictions, const std::vector<std::vector<std::string>>& references,
                std::vector<double>& corpus, std::vector<std::vector<double>>& per_item) {
  const BleuScores b = bleu_scores(predictions, references);
  corpus.assign(b.corpus.begin(), b.corpus.end());
  for (const auto& item : b.per_item) per_item.emplace_back(item.begin(), item.end());
}

void score_rouge_l(const std::vector<std::string>& predictions, const std::vector<std::vector<std::string>>& references,
                   std::vector<double>& corpus, std::vector<std::vector<double>>& per_item) {
  std::vector<double> values;
  for (size_t i = 0; i < predictions.size(); ++i) values.push_back(rouge_l(predictions[i], references[i]));
  for (double v : values) per_item.push_back({v});
  corpus = {numpy_mean(values)};
}

void score_cider_d(const std::vector<std::string>& predictions, const std::vector<std::vector<std::string>>& references,
                   std::vector<double>& corpus, std::vector<std::vector<double>>& per_item) {
  const std::vector<double> values = cider_d_scores(predictions, references);
  for (double v : values) per_item.push_back({v});
  corpus = {numpy_mean(values)};
}

}  // namespace

const std::vector<CaptionMetric>& caption_metrics() {
  static const std::vector<CaptionMetric> all = {
      {{"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"}, score_bleu},
      {{"ROUGE-L"}, score_rouge_l},
      {{"CIDEr-D"}, score_cider_d},
  };
  return all;
}

const std::vector<std::string>& caption_metric_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& m : caption_metrics()) n.insert(n.end(), m.names.begin(), m.names.end());
    return n;
  }();
  return names;
}

size_t caption_metric_index(const std::string& name) {
  const auto& names = caption_metric_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return i;
  throw Error("captions: no metric named '" + name + "'");
}

double ItemScores::operator[](const std::string& metric) const { return values.at(caption_metric_index(metric)); }
double CaptionScores::operator[](const std::string& metric) const { return corpus.at(caption_metric_index(metric)); }

CaptionScores score_captions(const std::vector<ScoredItem>& items) {
  if (items.empty()) throw Error("captions: no items to score");
  std::unordered_set<std::string> ids;
  std::vector<std::string> raw_predictions, raw_references;
  for (const ScoredItem& item : items) {
    if (!ids.insert(item.id).second) throw Error("captions: item '" + item.id + "': id appears more than once");
    if (item.references.empty()) throw Error("captions: item '" + item.id + "': has no reference captions");
    raw_predictions.push_back(item.prediction);
    raw_references.insert(raw_references.end(), item.references.begin(), item.references.end());
  }
  // Two tokeniser batches, as the toolkit runs them: all references, then all predictions.
  const std::vector<std::string> ref_tokens = coco_tokenize(raw_references);
  const std::vector<std::string> predictions = coco_tokenize(raw_predictions);
  std::vector<std::vector<std::string>> references;
  size_t next = 0;
  for (const ScoredItem& item : items) {
    references.emplace_back(ref_tokens.begin() + next, ref_tokens.begin() + next + item.references.size());
    next += item.references.size();
  }

  CaptionScores out;
  for (const ScoredItem& item : items) out.items.push_back({item.id, {}});
  for (const CaptionMetric& metric : caption_metrics()) {
    std::vector<double> corpus;
    std::vector<std::vector<double>> per_item;
    metric.score(predictions, references, corpus, per_item);
    out.corpus.insert(out.corpus.end(), corpus.begin(), corpus.end());
    for (size_t i = 0; i < items.size(); ++i)
      out.items[i].values.insert(out.items[i].values.end(), per_item[i].begin(), per_item[i].end());
  }
  return out;
}

}  // namespace clipcap
