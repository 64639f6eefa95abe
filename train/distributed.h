// Data-parallel training over PyTorch's c10d: the ranks meet at a TCPStore (rank 0 hosts it at
// MASTER_ADDR:MASTER_PORT), talk through ProcessGroupGloo, and follow torchrun's conventions, so a
// cluster scheduler or torchrun starts clipcap-train the way it starts PyTorch jobs.
//
//   if (auto ranks = clipcap::ranks_from_environment()) {        // RANK, WORLD_SIZE, ... are set
//     auto parallel = clipcap::connect_ranks(*ranks, options);   // rendezvous; errors name the peer
//     train(..., *parallel);                                     // a DataParallel (train/data_parallel.h)
//   }
//
// Faults: every collective waits at most `timeout`; a rank that dies is noticed at the next
// collective (its sockets close) and the error names it. A rank that cannot reach the store gives
// up after `timeout` with the address it tried.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "train/data_parallel.h"

namespace clipcap {

// One rank's place in the run, as torchrun's environment describes it.
struct RankInfo {
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;  // on this machine
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// The environment's RankInfo: nullopt when WORLD_SIZE is not set (not started as a rank); an error
// naming the variable when one is malformed or inconsistent.
std::optional<RankInfo> ranks_from_environment();

struct DistributedOptions {
  std::string backend = "gloo";                 // gloo (CPU); nccl needs a CUDA build of libtorch
  std::chrono::milliseconds timeout{60'000};    // a collective or the rendezvous waits at most this
};

// Joins the run: rendezvous through the TCPStore, then a Gloo process group of all ranks.
std::unique_ptr<DataParallel> connect_ranks(const RankInfo& info, const DistributedOptions& options);

}  // namespace clipcap
