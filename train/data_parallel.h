// How a training run shares its work between processes: the three places where data-parallel
// training plugs into the training loop (train/training_loop.h). One process (single_process())
// does all the work: nothing to reduce, the whole epoch, and it writes.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace clipcap {

class DataParallel {
 public:
  virtual ~DataParallel() = default;
  // After the backward of an optimizer step's last micro-batch: every process's gradients become
  // the average over all processes.
  virtual void reduce_gradients(const std::vector<torch::Tensor>& params) {}
  // This process's share of an epoch's order of examples, and its size for n examples.
  virtual std::vector<int64_t> shard(std::vector<int64_t> order) const { return order; }
  virtual int64_t shard_size(int64_t n) const { return n; }
  // Whether this process writes checkpoints, epoch records and the log.
  virtual bool writes_outputs() const { return true; }
};

DataParallel& single_process();

}  // namespace clipcap
