#include "train/data_parallel.h"

#include <torch/torch.h>

#include <algorithm>

#include "common/error.h"

namespace clipcap {

namespace {

// Gradients travel in flat buckets of about this size, as DDP's bucket_cap_mb = 25: few enough
// collectives to keep per-call latency small, small enough not to double the gradients' memory.
constexpr int64_t kBucketBytes = 25 << 20;

}  // namespace

DataParallel& single_process() {
  static DataParallel one;
  return one;
}

std::pair<int64_t, int64_t> even_part(int64_t n, int rank, int world) {
  return {n * rank / world, n * (rank + 1) / world};
}

std::pair<int64_t, int64_t> DataParallel::share(int64_t begin, int64_t end, int64_t per_rank) const {
  const int64_t first = std::min(end, begin + rank() * per_rank);
  return {first, std::min(end, first + per_rank)};
}

int64_t DataParallel::per_rank(int64_t global_batch, const std::string& what) const {
  const int64_t world = world_size();
  if (global_batch % world != 0)
    throw Error(what + " " + std::to_string(global_batch) + " is the global batch and must split evenly over the " +
                std::to_string(world) + " ranks: choose a multiple of " + std::to_string(world) +
                ", or another number of ranks");
  return global_batch / world;
}

void DataParallel::reduce_gradients(const std::vector<torch::Tensor>& params, std::vector<double>& totals) {
  torch::NoGradGuard no_grad;
  if (totals.empty()) throw Error("reduce_gradients: no step weight");
  if (world_size() == 1) {
    if (totals[0] <= 0) throw Error("training: an optimizer step over no examples");
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().div_(totals[0]);
    return;
  }
  // Flat buckets of same-dtype gradients, and the totals in a bucket of their own.
  std::vector<std::vector<torch::Tensor>> groups(1);
  int64_t bytes = 0;
  for (const auto& p : params) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    const torch::Tensor& g = p.grad();
    const bool full = bytes > 0 && bytes + g.numel() * g.element_size() > kBucketBytes;
    const bool other_dtype = !groups.back().empty() && groups.back().front().scalar_type() != g.scalar_type();
    if (full || other_dtype) groups.emplace_back(), bytes = 0;
    groups.back().push_back(g);
    bytes += g.numel() * g.element_size();
  }
  std::vector<torch::Tensor> flat;
  for (const auto& group : groups) {
    std::vector<torch::Tensor> parts;
    for (const auto& g : group) parts.push_back(g.reshape({-1}));
    flat.push_back(parts.empty() ? torch::zeros({0}) : torch::cat(parts));
  }
  torch::Tensor totals_bucket = torch::tensor(totals, torch::kFloat64);
  flat.push_back(totals_bucket);
  sum(flat);
  for (size_t i = 0; i < totals.size(); ++i) totals[i] = totals_bucket[static_cast<int64_t>(i)].item<double>();
  const double total = totals[0];
  if (total <= 0) throw Error("training: an optimizer step over no examples on any rank");
  for (size_t b = 0; b < groups.size(); ++b) {
    int64_t offset = 0;
    for (auto& g : groups[b]) {
      g.copy_(flat[b].slice(0, offset, offset + g.numel()).view_as(g)).div_(total);
      offset += g.numel();
    }
  }
}

double DataParallel::sum(double x) {
  std::vector<torch::Tensor> t{torch::full({1}, x, torch::kFloat64)};
  sum(t);
  return t[0].item<double>();
}

torch::Tensor DataParallel::gather_rows(const torch::Tensor& local, const std::vector<int64_t>& counts) {
  if (world_size() == 1) return local;
  torch::NoGradGuard no_grad;
  const int64_t most = *std::max_element(counts.begin(), counts.end());
  std::vector<int64_t> shape = local.sizes().vec();
  shape[0] = most - local.size(0);
  torch::Tensor padded = torch::cat({local, torch::zeros(shape, local.options())});  // (most, ...)
  torch::Tensor all = gather(padded);                                                 // (world * most, ...)
  std::vector<torch::Tensor> rows;
  for (size_t r = 0; r < counts.size(); ++r)
    rows.push_back(all.slice(0, static_cast<int64_t>(r) * most, static_cast<int64_t>(r) * most + counts[r]));
  return torch::cat(rows);
}

}  // namespace clipcap
