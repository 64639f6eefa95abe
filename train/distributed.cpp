#include "train/distributed.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "common/error.h"

namespace clipcap {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

int env_int(const char* name, std::optional<int> fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    if (fallback) return *fallback;
    throw Error(std::string(name) + " is not set; a rank needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT");
  }
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1 << 30) throw Error(std::string(name) + "='" + v + "' is not a count or an index");
  return static_cast<int>(x);
}

std::string seconds_text(milliseconds ms) { return std::to_string(ms.count() / 1000.0).substr(0, 4) + " s"; }

// The Gloo device: the interface GLOO_SOCKET_IFNAME names (as PyTorch does), loopback for a run on
// one machine, otherwise the address this host's name resolves to.
std::shared_ptr<::gloo::transport::Device> gloo_device(const RankInfo& info) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (info.master_addr == "127.0.0.1" || info.master_addr == "localhost")
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

c10::intrusive_ptr<c10d::TCPStore> open_store(const RankInfo& info, milliseconds timeout, bool wait_for_all) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<uint16_t>(info.master_port);
  o.isServer = info.rank == 0 && wait_for_all;
  o.numWorkers = static_cast<size_t>(info.world_size);
  o.waitWorkers = wait_for_all;
  o.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(info.master_addr, o);
}

// Each rank bumps a counter in the store every second from its own connection, so when a
// collective fails the survivors can tell which ranks are gone (or hang) from those that are
// merely waiting like them.
class Heartbeat {
 public:
  Heartbeat(const RankInfo& info, milliseconds timeout) : info_(info) {
    store_ = open_store(info, timeout, /*wait_for_all=*/false);
    thread_ = std::thread([this] { beat(); });
  }
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  // Ranks whose counter does not move within `window`; all of them but this one when the store
  // (rank 0) is gone, signalled by returning {0}.
  std::vector<int> silent_ranks(milliseconds window) {
    try {
      auto counters = [&] {
        std::lock_guard<std::mutex> lock(mu_);  // one connection, two threads
        std::vector<int64_t> c(static_cast<size_t>(info_.world_size));
        for (int r = 0; r < info_.world_size; ++r) c[r] = store_->add(key(r), 0);
        return c;
      };
      const auto before = counters();
      std::this_thread::sleep_for(window);
      const auto after = counters();
      std::vector<int> silent;
      for (int r = 0; r < info_.world_size; ++r)
        if (r != info_.rank && after[r] == before[r]) silent.push_back(r);
      return silent;
    } catch (const std::exception&) {
      return {0};
    }
  }

 private:
  static std::string key(int rank) { return "clipcap/heartbeat/" + std::to_string(rank); }
  void beat() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      try {
        store_->add(key(info_.rank), 1);
      } catch (const std::exception&) {
        return;  // the store is gone (rank 0 ended): nothing left to tell
      }
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
    }
  }

  RankInfo info_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

class GlooParallel;

// all_gather whose backward sums the gathered gradient over the ranks and returns this rank's rows.
struct GatherWithGrad : torch::autograd::Function<GatherWithGrad> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor local, GlooParallel* group);
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads);
};

class GlooParallel : public DataParallel {
 public:
  GlooParallel(const RankInfo& info, const DistributedOptions& opts) : info_(info), timeout_(opts.timeout) {
    const std::string where = info.master_addr + ":" + std::to_string(info.master_port);
    try {
      store_ = open_store(info, opts.timeout, /*wait_for_all=*/true);
    } catch (const std::exception& e) {
      throw Error(name() + ": " +
                  (info.rank == 0 ? "the rendezvous store at " + where + " did not see all " +
                                        std::to_string(info.world_size) + " ranks join within " +
                                        seconds_text(opts.timeout)
                                  : "cannot reach the rendezvous store at " + where + " within " +
                                        seconds_text(opts.timeout) +
                                        " (is rank 0 running? are MASTER_ADDR and MASTER_PORT right?)") +
                  ": " + first_line(e.what()));
    }
    try {
      auto o = c10d::ProcessGroupGloo::Options::create(opts.timeout);
      o->devices.push_back(gloo_device(info));
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, info.rank, info.world_size, o);
    } catch (const std::exception& e) {
      throw Error(name() + ": cannot connect to the other ranks: " + first_line(e.what()));
    }
    heartbeat_ = std::make_unique<Heartbeat>(info, opts.timeout);
  }

  int rank() const override { return info_.rank; }
  int world_size() const override { return info_.world_size; }

  void sum(std::vector<torch::Tensor>& tensors) override {
    run("summing over the ranks", [&] {
      std::vector<c10::intrusive_ptr<c10d::Work>> works;
      for (auto& t : tensors) {
        std::vector<torch::Tensor> one{t};
        works.push_back(group_->allreduce(one));
      }
      for (auto& w : works) w->wait();
    });
  }

  void broadcast(std::vector<torch::Tensor>& tensors) override {
    torch::NoGradGuard no_grad;
    run("receiving rank 0's parameters", [&] {
      for (auto& t : tensors) {
        std::vector<torch::Tensor> one{t};
        group_->broadcast(one)->wait();
      }
    });
  }

  torch::Tensor gather(const torch::Tensor& local) override { return GatherWithGrad::apply(local, this); }

  torch::Tensor all_gather(const torch::Tensor& local) {
    torch::Tensor in = local.contiguous();
    std::vector<std::vector<torch::Tensor>> out(1);
    for (int r = 0; r < info_.world_size; ++r) out[0].push_back(torch::empty_like(in));
    std::vector<torch::Tensor> ins{in};
    run("gathering from the ranks", [&] { group_->allgather(out, ins)->wait(); });
    return torch::cat(out[0]);
  }

  bool any(bool mine) override { return DataParallel::sum(mine ? 1.0 : 0.0) > 0; }

  void barrier() override {
    run("waiting for the other ranks", [&] { group_->barrier()->wait(); });
  }

 private:
  std::string name() const { return "rank " + std::to_string(info_.rank) + "/" + std::to_string(info_.world_size); }

  // A collective; its failure becomes an error that names the ranks that are gone.
  void run(const std::string& what, const std::function<void()>& collective) {
    try {
      collective();
    } catch (const std::exception& e) {
      const std::vector<int> gone = heartbeat_->silent_ranks(milliseconds(2500));
      std::string who;
      for (int r : gone) who += (who.empty() ? "" : ", ") + std::to_string(r);
      std::string msg = name() + ": lost the other ranks while " + what + ": ";
      if (gone == std::vector<int>{0} && info_.rank != 0)
        msg += "rank 0 (which hosts the rendezvous store) is gone";
      else if (!gone.empty())
        msg += std::string(gone.size() == 1 ? "rank " : "ranks ") + who + " stopped (died, was killed, or hangs)";
      else
        msg += "a collective failed or timed out after " + seconds_text(timeout_);
      throw Error(msg + " (" + first_line(e.what()) + ")");
    }
  }

  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

  RankInfo info_;
  milliseconds timeout_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
  std::unique_ptr<Heartbeat> heartbeat_;
  friend struct GatherWithGrad;
};

torch::Tensor GatherWithGrad::forward(torch::autograd::AutogradContext* ctx, torch::Tensor local, GlooParallel* group) {
  ctx->saved_data["group"] = reinterpret_cast<int64_t>(group);
  ctx->saved_data["rows"] = local.size(0);
  return group->all_gather(local);
}

torch::autograd::variable_list GatherWithGrad::backward(torch::autograd::AutogradContext* ctx,
                                                        torch::autograd::variable_list grads) {
  auto* group = reinterpret_cast<GlooParallel*>(ctx->saved_data["group"].toInt());
  const int64_t rows = ctx->saved_data["rows"].toInt();
  std::vector<torch::Tensor> g{grads[0].contiguous().clone()};
  group->sum(g);
  return {g[0].slice(0, group->rank() * rows, (group->rank() + 1) * rows), torch::Tensor()};
}

}  // namespace

std::optional<RankInfo> ranks_from_environment() {
  const char* world = std::getenv("WORLD_SIZE");
  if (!world || !*world) return std::nullopt;
  RankInfo info;
  info.world_size = env_int("WORLD_SIZE", std::nullopt);
  info.rank = env_int("RANK", std::nullopt);
  if (info.world_size < 1) throw Error("WORLD_SIZE must be at least 1");
  if (info.rank >= info.world_size)
    throw Error("RANK=" + std::to_string(info.rank) + " is not below WORLD_SIZE=" + std::to_string(info.world_size));
  info.local_rank = env_int("LOCAL_RANK", info.rank);
  info.local_world_size = env_int("LOCAL_WORLD_SIZE", info.world_size);
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) info.master_addr = addr;
  info.master_port = env_int("MASTER_PORT", 29500);
  if (info.master_port < 1 || info.master_port > 65535)
    throw Error("MASTER_PORT=" + std::to_string(info.master_port) + " is not a TCP port");
  return info;
}

std::unique_ptr<DataParallel> connect_ranks(const RankInfo& info, const DistributedOptions& options) {
  if (options.backend == "nccl")
    throw Error("--dist-backend nccl needs libtorch built with CUDA and NCCL; this one (Debian's) is CPU-only: "
                "use --dist-backend gloo");
  if (options.backend != "gloo")
    throw Error("--dist-backend " + options.backend + ": unknown (choices: gloo, nccl)");
  if (info.world_size == 1) return std::make_unique<DataParallel>();
  return std::make_unique<GlooParallel>(info, options);
}

}  // namespace clipcap
