// How a training run shares its work between processes ("ranks"), as PyTorch's
// DistributedDataParallel does: every rank holds the whole model, takes its share of each global
// micro-batch, and after backward the gradients are summed over the ranks, so every rank takes
// the same optimizer step. One process (single_process()) is the world of one rank;
// train/distributed.h is the c10d implementation (Gloo, TCPStore rendezvous).
//
// The training loop (train/training_loop.h) and the objectives only talk to this interface, so
// the same code trains on one process or many, and gives the same weights: a micro-batch's loss
// is weighted by what it counts for (target tokens, pairs) and the step's gradient is divided by
// the weight summed over all ranks and micro-batches, which is the loss of one process seeing
// the whole global batch. Batch sizes in configs are global: each rank takes batch / world_size.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace clipcap {

class DataParallel {
 public:
  virtual ~DataParallel() = default;

  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }
  // Rank 0 writes checkpoints, epoch records and the log; the others only compute.
  bool writes_outputs() const { return rank() == 0; }

  // This rank's positions [first, last) of the global micro-batch at positions [begin, end) of an
  // epoch's order, when each rank takes at most `per_rank` of it: rank r takes the r-th block, so
  // the global batch is the blocks in rank order. A last short batch leaves the last ranks fewer
  // positions, or none (first == last): nothing is dropped and nothing repeated.
  std::pair<int64_t, int64_t> share(int64_t begin, int64_t end, int64_t per_rank) const;
  // The global batch's per-rank part; an error naming `what` when it does not divide.
  int64_t per_rank(int64_t global_batch, const std::string& what) const;

  // Every rank's gradients of `params` become their sum over the ranks divided by totals[0] summed
  // over the ranks (the step's weight: its gradients are those of the weighted losses); every
  // entry of `totals` becomes its sum over the ranks, in the same collective. Parameters without a
  // gradient on a rank count as zeros there.
  virtual void reduce_gradients(const std::vector<torch::Tensor>& params, std::vector<double>& totals);
  // Every rank's `tensors` (f32 or f64, same shapes on every rank) become their sum, in place.
  virtual void sum(std::vector<torch::Tensor>& tensors) {}
  // Rank 0's values, copied into every rank's `tensors` (the starting parameters).
  virtual void broadcast(std::vector<torch::Tensor>& tensors) {}
  // The ranks' `local` (n, ...) tensors concatenated in rank order, (world_size * n, ...); the
  // backward sums the gathered gradient over the ranks and hands each rank its own rows, so a loss
  // on the gathered rows trains every rank's share (OpenCLIP's gather_with_grad).
  virtual torch::Tensor gather(const torch::Tensor& local) { return local; }
  // Whether any rank says yes (stop requests), the same answer on every rank.
  virtual bool any(bool mine) { return mine; }
  // Returns when every rank has called it.
  virtual void barrier() {}

  double sum(double x);
  // `local` rows of this rank concatenated in rank order, when rank r holds counts[r] rows
  // (no gradient). For work split unevenly, such as validation.
  torch::Tensor gather_rows(const torch::Tensor& local, const std::vector<int64_t>& counts);
};

DataParallel& single_process();

// The contiguous part of n items rank r of world takes: [n*r/world, n*(r+1)/world).
std::pair<int64_t, int64_t> even_part(int64_t n, int rank, int world);

}  // namespace clipcap
