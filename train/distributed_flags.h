// The command-line side of distributed training, shared by `clipcap-train` and `clipcap-train clip`:
// the launcher's flags (torchrun's names), the process-group options, and the two ways a command
// starts: as the launcher of this machine's ranks, or as one rank (WORLD_SIZE set, by the launcher,
// torchrun or a cluster scheduler).
//
//   clipcap::DistributedFlags dist;
//   clipcap::add_distributed_flags(app, dist);
//   ... parse ...
//   if (auto code = clipcap::launch_if_asked(dist, argv, "clipcap-train")) return *code;
//   auto parallel = clipcap::join_if_rank(dist, runtime);   // nullptr: one process
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "train/data_parallel.h"
#include "train/distributed.h"
#include "train/rank_launcher.h"

namespace CLI {
class App;
}

namespace clipcap {

struct RuntimeOptions;

struct DistributedFlags {
  LaunchOptions launch;
  DistributedOptions options;
  double timeout_seconds = 60;
};

void add_distributed_flags(CLI::App& app, DistributedFlags& flags);

// --nproc-per-node given and this process is not a rank yet: runs this machine's ranks with the
// same command line and returns the exit code; otherwise nullopt.
std::optional<int> launch_if_asked(const DistributedFlags& flags, const std::vector<std::string>& argv,
                                   const std::string& program);

// Started as a rank: joins the others (rendezvous, process group). Unless --threads was given, a
// rank takes its share of this machine's cores (cores / LOCAL_WORLD_SIZE). nullptr when not a rank.
std::unique_ptr<DataParallel> join_if_rank(const DistributedFlags& flags, RuntimeOptions& runtime);

}  // namespace clipcap
