#include "train/distributed_flags.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>

#include "common/error.h"
#include "common/runtime.h"

namespace clipcap {

void add_distributed_flags(CLI::App& app, DistributedFlags& f) {
  const std::string group = "Distributed (torchrun's names; a rank started by torchrun reads RANK, WORLD_SIZE, ...)";
  app.add_option("--nproc-per-node", f.launch.nproc_per_node,
                 "start this many ranks on this machine and train data-parallel (each takes batch_size / ranks)")
      ->group(group);
  app.add_option("--nnodes", f.launch.nnodes, "machines taking part (each runs the same command with its --node-rank)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--node-rank", f.launch.node_rank, "this machine's index, 0 .. nnodes-1 (node 0 hosts rank 0)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--master-addr", f.launch.master_addr, "address of node 0, where rank 0 hosts the rendezvous store")
      ->capture_default_str()
      ->group(group);
  app.add_option("--master-port", f.launch.master_port, "TCP port of the rendezvous store")
      ->capture_default_str()
      ->group(group);
  app.add_option("--dist-backend", f.options.backend, "gloo (CPU), or nccl (libtorch with CUDA only)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--dist-timeout", f.timeout_seconds,
                 "seconds a rank waits for the others (rendezvous, each collective) before it stops with an error")
      ->capture_default_str()
      ->check(CLI::PositiveNumber)
      ->group(group);
}

namespace {

std::chrono::milliseconds timeout_of(const DistributedFlags& f) {
  return std::chrono::milliseconds(static_cast<int64_t>(f.timeout_seconds * 1000));
}

}  // namespace

std::optional<int> launch_if_asked(const DistributedFlags& f, const std::vector<std::string>& argv,
                                   const std::string& program) {
  if (f.launch.nproc_per_node == 0 || ranks_from_environment()) return std::nullopt;
  LaunchOptions o = f.launch;
  // After a rank fails the others notice at their next collective, at most a timeout later.
  o.grace = timeout_of(f) + std::chrono::seconds(10);
  return launch_ranks(o, argv, program, std::cerr);
}

std::unique_ptr<DataParallel> join_if_rank(const DistributedFlags& f, RuntimeOptions& runtime) {
  const std::optional<RankInfo> info = ranks_from_environment();
  if (!info) {
    if (f.launch.nnodes > 1 || f.launch.node_rank > 0)
      throw Error("--nnodes/--node-rank need --nproc-per-node (the ranks to start on this machine)");
    return nullptr;
  }
  if (runtime.threads == 0) runtime.threads = std::max(1, available_cores() / std::max(1, info->local_world_size));
  DistributedOptions o = f.options;
  o.timeout = timeout_of(f);
  return connect_ranks(*info, o);
}

}  // namespace clipcap
