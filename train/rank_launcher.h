// The built-in launcher, torchrun's job for one machine: starts this executable again once per
// local rank with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT), forwards Ctrl-C / SIGTERM to the ranks, and when a rank fails gives
// the others `grace` to notice and stop, then ends them; the exit code and a line on `log` name
// the rank that failed. The ranks run the same command line: they see WORLD_SIZE and train.
//
//   clipcap::LaunchOptions o;  o.nproc_per_node = 2;            // --nnodes/--node-rank for more machines
//   return clipcap::launch_ranks(o, argv, "clipcap-train", std::cerr);
#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <vector>

namespace clipcap {

struct LaunchOptions {
  int nproc_per_node = 0;  // ranks on this machine; 0: not launching
  int nnodes = 1;          // machines
  int node_rank = 0;       // this machine's index: its ranks are node_rank * nproc_per_node + local rank
  std::string master_addr = "127.0.0.1";  // where rank 0 (on node 0) hosts the rendezvous store
  int master_port = 29500;
  std::chrono::milliseconds grace{60'000};  // after a rank fails, how long the others may take to stop

  void validate() const;
};

// Runs the ranks of this machine to the end. Returns 0 when all succeed, 130 when they were
// interrupted, otherwise 1 (a rank failed or was killed; `log` says which).
int launch_ranks(const LaunchOptions& opts, const std::vector<std::string>& argv, const std::string& program,
                 std::ostream& log);

}  // namespace clipcap
