#include "data/dataset_split.h"

#include <cmath>
#include <random>
#include <string>

#include "common/error.h"

namespace clipcap {

void SplitOptions::validate() const {
  if (!(train >= 0 && val >= 0 && train + val <= 1.0 + 1e-12))
    throw Error("split fractions: --train " + std::to_string(train) + " and --val " + std::to_string(val) +
                " must be >= 0 and add up to at most 1 (the rest is test)");
}

void assign_splits(std::vector<SourceItem>& items, const SplitOptions& opts) {
  opts.validate();
  std::vector<size_t> open;
  for (size_t i = 0; i < items.size(); ++i)
    if (items[i].split.empty()) open.push_back(i);
  std::mt19937_64 rng(opts.seed);
  // Fisher-Yates with rng() % (i + 1): std::shuffle and the distributions are implementation-defined.
  for (size_t i = open.size(); i > 1; --i) std::swap(open[i - 1], open[rng() % i]);
  const auto n = static_cast<double>(open.size());
  const size_t n_train = static_cast<size_t>(std::floor(n * opts.train));
  const size_t n_val = std::min(open.size() - n_train, static_cast<size_t>(std::floor(n * opts.val)));
  for (size_t k = 0; k < open.size(); ++k)
    items[open[k]].split = k < n_train ? "train" : k < n_train + n_val ? "val" : "test";
}

}  // namespace clipcap
