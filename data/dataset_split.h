// Train/val/test splits BY IMAGE (upstream split caption rows, so the same image landed in train
// and test: LEGACY.md, defect 8).
//
//   clipcap::SplitOptions opts;            // seed 100, 0.84 / 0.13 / rest, like upstream
//   clipcap::assign_splits(source.items, opts);
//
// Items whose source gave a split keep it. The others are shuffled with a Fisher-Yates driven by
// std::mt19937_64(seed) (fully specified by the standard, so every platform agrees), then the
// first floor(n*train) become train, the next floor(n*val) val, the rest test. The result depends
// only on the seed, the fractions and the list of undecided items (not on threads or shards).
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset_sources.h"

namespace clipcap {

struct SplitOptions {
  uint64_t seed = 100;  // upstream's seed
  double train = 0.84;  // fraction of the undecided images
  double val = 0.13;    // the rest (0.03 by default) is test
  void validate() const;  // Error unless 0 <= train, val and train + val <= 1
};

void assign_splits(std::vector<SourceItem>& items, const SplitOptions& opts);

}  // namespace clipcap
