#include "train/rank_launcher.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <ostream>
#include <thread>

#include "common/error.h"

namespace clipcap {

namespace {

using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_forward_signal = 0;  // a signal the launcher received, to pass on

void remember_signal(int sig) { g_forward_signal = sig; }

struct Rank {
  int rank = 0, local_rank = 0;
  pid_t pid = -1;
  bool running = true;
  int status = 0;  // waitpid's
};

std::string describe(const Rank& r) {
  std::string who = "rank " + std::to_string(r.rank) + " (pid " + std::to_string(r.pid) + ")";
  if (WIFSIGNALED(r.status))
    return who + " was killed by signal " + std::to_string(WTERMSIG(r.status)) + " (" + strsignal(WTERMSIG(r.status)) + ")";
  return who + " exited with status " + std::to_string(WEXITSTATUS(r.status));
}

bool succeeded(const Rank& r) { return WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0; }
bool interrupted(const Rank& r) { return WIFEXITED(r.status) && WEXITSTATUS(r.status) == 130; }

pid_t start_rank(const LaunchOptions& o, const Rank& r, const std::vector<std::string>& argv) {
  const std::map<std::string, std::string> env = {
      {"RANK", std::to_string(r.rank)},
      {"WORLD_SIZE", std::to_string(o.nnodes * o.nproc_per_node)},
      {"LOCAL_RANK", std::to_string(r.local_rank)},
      {"LOCAL_WORLD_SIZE", std::to_string(o.nproc_per_node)},
      {"GROUP_RANK", std::to_string(o.node_rank)},
      {"MASTER_ADDR", o.master_addr},
      {"MASTER_PORT", std::to_string(o.master_port)},
  };
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw Error(std::string("cannot start a rank: fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Its own process group: a terminal's Ctrl-C reaches the launcher only, which passes it on
    // once; and the rank ends if the launcher dies.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    execv("/proc/self/exe", args.data());
    std::fprintf(stderr, "cannot start rank %d: exec: %s\n", r.rank, std::strerror(errno));
    _exit(127);
  }
  return pid;
}

void signal_all(std::vector<Rank>& ranks, int sig) {
  for (auto& r : ranks)
    if (r.running) kill(r.pid, sig);
}

// Collects the ranks that ended; true when one did.
bool reap(std::vector<Rank>& ranks) {
  bool any = false;
  for (auto& r : ranks) {
    if (!r.running) continue;
    int status = 0;
    if (waitpid(r.pid, &status, WNOHANG) == r.pid) {
      r.running = false;
      r.status = status;
      any = true;
    }
  }
  return any;
}

bool all_done(const std::vector<Rank>& ranks) {
  for (const auto& r : ranks)
    if (r.running) return false;
  return true;
}

}  // namespace

void LaunchOptions::validate() const {
  if (nproc_per_node < 1) throw Error("--nproc-per-node must be at least 1");
  if (nnodes < 1) throw Error("--nnodes must be at least 1");
  if (node_rank < 0 || node_rank >= nnodes)
    throw Error("--node-rank " + std::to_string(node_rank) + " is not below --nnodes " + std::to_string(nnodes));
  if (master_port < 1 || master_port > 65535) throw Error("--master-port " + std::to_string(master_port) + " is not a TCP port");
}

int launch_ranks(const LaunchOptions& o, const std::vector<std::string>& argv, const std::string& program,
                 std::ostream& log) {
  o.validate();
  struct sigaction sa {};
  sa.sa_handler = remember_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::vector<Rank> ranks;
  for (int local = 0; local < o.nproc_per_node; ++local) {
    Rank r;
    r.local_rank = local;
    r.rank = o.node_rank * o.nproc_per_node + local;
    r.pid = start_rank(o, r, argv);
    ranks.push_back(r);
  }
  log << program << ": started ranks " << ranks.front().rank << ".." << ranks.back().rank << " of "
      << o.nnodes * o.nproc_per_node << " (rendezvous " << o.master_addr << ":" << o.master_port << ")\n";
  log.flush();

  const Rank* failed = nullptr;
  Clock::time_point failed_at, terminated_at;
  bool terminated = false;
  while (!all_done(ranks)) {
    if (g_forward_signal) {
      signal_all(ranks, g_forward_signal);
      g_forward_signal = 0;
    }
    if (reap(ranks) && !failed) {
      for (const auto& r : ranks)
        if (!r.running && !succeeded(r) && !interrupted(r)) {  // 130: stopped, with a checkpoint
          failed = &r;
          failed_at = Clock::now();
          log << program << ": " << describe(r) << "; the other ranks stop within "
              << o.grace.count() / 1000 << " s\n";
          log.flush();
          break;
        }
    }
    // The others should notice a lost rank at their next collective; past the grace, end them.
    if (failed && !terminated && Clock::now() - failed_at > o.grace) {
      signal_all(ranks, SIGTERM);
      terminated = true;
      terminated_at = Clock::now();
    }
    if (terminated && Clock::now() - terminated_at > std::chrono::seconds(5)) signal_all(ranks, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (failed) {
    log << program << ": failed: " << describe(*failed) << "\n";
    return 1;
  }
  for (const auto& r : ranks)
    if (!succeeded(r)) return interrupted(r) ? 130 : 1;
  return 0;
}

}  // namespace clipcap
