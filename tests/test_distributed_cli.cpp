// Distributed training on loopback, through the real executable: ranks started by the built-in
// launcher (--nproc-per-node, --nnodes/--node-rank) or by hand with torchrun's environment train to
// the weights one process reaches with the same global batch; a killed rank stops the others with
// an error naming it, and the run resumes with the same or another number of ranks.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "common/json_util.h"
#include "model/weights/safetensors.h"
#include "tests/dataset_test_util.h"
#include "tests/test_support.h"
#include "tests/test_train_support.h"

namespace fs = std::filesystem;
using namespace clipcap::test;

namespace {

// A TCP port nothing listens on now (the kernel's pick for port 0).
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// The largest difference between two weight files, and where; attention key projections apart.
// Part of their true gradient is zero (every key moving by the same vector leaves a query's softmax
// unchanged, and layer-normed inputs share a component), so there they get float rounding, which
// Adam (eps 1e-6) scales into steps of up to lr: measured here ~2e-5 after one step at lr 3e-3.
struct WeightDifference {
  double most = 0, most_keys = 0;
  std::string where;
};

WeightDifference max_weight_difference(const std::string& a, const std::string& b) {
  auto x = clipcap::load_safetensors(a), y = clipcap::load_safetensors(b);
  EXPECT_EQ(x.size(), y.size());
  WeightDifference w;
  for (const auto& [name, t] : x) {
    EXPECT_TRUE(y.count(name)) << name;
    if (!y.count(name)) continue;
    const double d = (t.to(torch::kDouble) - y.at(name).to(torch::kDouble)).abs().max().item<double>();
    if (name.find("k_proj") != std::string::npos)
      w.most_keys = std::max(w.most_keys, d);
    else if (d > w.most)
      w.most = d, w.where = name;
  }
  return w;
}

// A run of the tiny captioner: from-scratch decoder (so rank 0 trains the tokenizer the others read),
// no dropout, global batch 2^batch_exp.
std::string caption_config(const std::string& dir, int batch_exp, int epochs) {
  nlohmann::json j = {{"batch_size_exp", batch_exp}, {"ep_len", 2}, {"num_layers", 1}, {"n_heads", 4},
                      {"forward_expansion", 2}, {"max_len", 12}, {"val_samples", 1}, {"schedule", "constant"},
                      {"lr", 1e-3}, {"epochs", epochs}, {"dropout", 0.0},
                      {"decoder", {{"from_scratch", true}, {"n_layer", 1}, {"n_embd", 32}, {"n_head", 4},
                                   {"vocab_size", 40}, {"dropout", 0.0}}}};
  const std::string path = dir + "/config.json";
  write_text(path, j.dump());
  return path;
}

std::string train_cmd(const std::string& config, const std::string& data, const std::string& out) {
  return tool("clipcap-train") + " --config " + config + " --data " + data + " --out " + out + " --clip-model " +
         fixture("tiny-clip") + " --threads 1";
}

}  // namespace

TEST(DistributedCli, TwoRanksOfHalfTheBatchTrainTheWeightsOfOneProcess) {
  // 40 captions of different lengths, global batch 16: 3 steps an epoch, the last of 8 examples,
  // which rank 0 takes whole while rank 1's share is empty.
  const std::string data = make_dataset("dist-eq", 40, 4);
  const std::string dir = temp_dir("dist-eq-runs");
  const std::string config = caption_config(dir, 4, 2);
  auto one = run(train_cmd(config, data, dir + "/one"));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto two = run(train_cmd(config, data, dir + "/two") + " --nproc-per-node 2 --master-port " +
                 std::to_string(free_port()));
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_NE(two.err.find("2 ranks, global batch 16 = 2 x 8"), std::string::npos) << two.err;
  EXPECT_EQ(two.err.find("epoch 1/2 |"), two.err.rfind("epoch 1/2 |")) << "only rank 0 logs:\n" << two.err;

  const auto diff = max_weight_difference(dir + "/one/last/model.safetensors", dir + "/two/last/model.safetensors");
  EXPECT_LT(diff.most, 1e-5) << diff.where;
  EXPECT_LT(diff.most_keys, 1e-4);
  auto m1 = read_metrics(dir + "/one"), m2 = read_metrics(dir + "/two");
  ASSERT_EQ(m1.size(), 2u);
  ASSERT_EQ(m2.size(), 2u);
  for (size_t e = 0; e < 2; ++e) {
    EXPECT_EQ(m2[e]["ranks"], 2);
    EXPECT_EQ(m1[e]["step"], m2[e]["step"]);
    EXPECT_NEAR(m1[e]["train_loss"].get<double>(), m2[e]["train_loss"].get<double>(), 1e-5);
    EXPECT_NEAR(m1[e]["val_loss"].get<double>(), m2[e]["val_loss"].get<double>(), 1e-5);
  }
}

TEST(DistributedCli, GradientAccumulationAndBf16AutocastKeepWorkingOnRanks) {
  // 2 ranks x micro-batches of 8 (4 each), 2 per step = one process with batches of 16.
  const std::string data = make_dataset("dist-accum", 40, 4);
  const std::string dir = temp_dir("dist-accum-runs");
  const std::string whole = caption_config(dir, 4, 2);
  auto one = run(train_cmd(whole, data, dir + "/one"));
  ASSERT_EQ(one.exit_code, 0) << one.err;
  fs::create_directories(dir + "/accum");
  const std::string accum = caption_config(dir + "/accum", 3, 2);
  auto two = run(train_cmd(accum, data, dir + "/two") + " --grad-accum 2 --nproc-per-node 2 --master-port " +
                 std::to_string(free_port()));
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const auto diff = max_weight_difference(dir + "/one/last/model.safetensors", dir + "/two/last/model.safetensors");
  EXPECT_LT(diff.most, 1e-5) << diff.where;
  EXPECT_EQ(read_metrics(dir + "/one").back()["step"], read_metrics(dir + "/two").back()["step"]);

  auto bf16 = run(train_cmd(whole, data, dir + "/bf16") + " --dtype bf16 --nproc-per-node 2 --master-port " +
                  std::to_string(free_port()));
  ASSERT_EQ(bf16.exit_code, 0) << bf16.err;
  const auto f32_last = read_metrics(dir + "/one").back(), bf16_last = read_metrics(dir + "/bf16").back();
  EXPECT_NEAR(bf16_last["val_loss"].get<double>(), f32_last["val_loss"].get<double>(), 0.1);
}

TEST(DistributedCli, TheLauncherPassesCtrlCOnAndEveryRankStopsAtTheSameCheckpoint) {
  const std::string data = make_dataset("dist-int", 8, 2);
  const std::string dir = temp_dir("dist-int-runs"), out = dir + "/run";
  const std::string cmd = "CLIPCAP_TEST_STEP_DELAY_MS=100 " + train_cmd(caption_config(dir, 1, 50), data, out) +
                          " --nproc-per-node 2 --master-port " + std::to_string(free_port());
  auto r = run("(" + cmd + " & launcher=$!; for i in $(seq 600); do [ -s " + out +
               "/last/trainer_state.json ] && break; sleep 0.05; done; kill -INT $launcher; wait $launcher; echo exit=$?)");
  EXPECT_NE(r.out.find("exit=130"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("interrupted: saving a checkpoint"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("failed"), std::string::npos) << r.err;
  const auto state = clipcap::read_json(out + "/last/trainer_state.json");
  auto resumed = run("CLIPCAP_TEST_STOP_AFTER_STEPS=1 " + tool("clipcap-train") + " --resume " + out + " --threads 1");
  EXPECT_EQ(resumed.exit_code, 130) << resumed.err;
  EXPECT_NE(resumed.err.find("resuming " + out), std::string::npos) << resumed.err;
  EXPECT_EQ(clipcap::read_json(out + "/last/trainer_state.json")["step"], state["step"].get<int>() + 1);
}

TEST(DistributedCli, ClipTrainingOnTwoRanksGathersTheNegativesAndMatchesOneProcess) {
  const std::string dir = temp_dir("dist-clip");
  make_clip_pairs(dir);
  clipcap::ClipTrainConfig c = tiny_clip_config();
  c.training.epochs = 6;
  c.training.shift = 2;  // the translations drawn must be the same ones too
  write_text(dir + "/clip.json", c.to_json().dump());
  const std::string cmd = tool("clipcap-train") + " clip --format jsonl --split-column split --captions " + dir +
                          "/pairs.jsonl --images " + dir + "/images --config " + dir + "/clip.json --threads 1";
  auto one = run(cmd + " --out " + dir + "/one");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto two = run(cmd + " --out " + dir + "/two --nproc-per-node 2 --master-port " + std::to_string(free_port()));
  ASSERT_EQ(two.exit_code, 0) << two.err;
  const auto diff = max_weight_difference(dir + "/one/model.safetensors", dir + "/two/model.safetensors");
  EXPECT_LT(diff.most, 1e-5) << diff.where;
  EXPECT_LT(diff.most_keys, 1e-4);
  EXPECT_FALSE(fs::exists(dir + "/two.rank1.tmp"));
  auto t1 = clipcap::read_json(dir + "/one/training.json"), t2 = clipcap::read_json(dir + "/two/training.json");
  EXPECT_NEAR(t1["final"]["train_loss"].get<double>(), t2["final"]["train_loss"].get<double>(), 1e-5);
  EXPECT_NEAR(t1["final"]["val_loss"].get<double>(), t2["final"]["val_loss"].get<double>(), 1e-5);
}

TEST(DistributedCli, TwoMachinesOnLoopbackTrainWhatOneMachineWithAsManyRanksDoes) {
  const std::string data = make_dataset("dist-nodes", 24, 4);
  const std::string dir = temp_dir("dist-nodes-runs");
  const std::string config = caption_config(dir, 3, 1);
  auto local = run(train_cmd(config, data, dir + "/local") + " --nproc-per-node 2 --master-port " +
                   std::to_string(free_port()));
  ASSERT_EQ(local.exit_code, 0) << local.err;
  const std::string port = std::to_string(free_port());
  const std::string node = train_cmd(config, data, dir + "/nodes") + " --nproc-per-node 1 --nnodes 2 --master-port " + port;
  auto r = run("(" + node + " --node-rank 1 2>" + dir + "/node1.err & pid=$!; " + node +
               " --node-rank 0; a=$?; wait $pid; echo exits=$a,$?)");
  EXPECT_NE(r.out.find("exits=0,0"), std::string::npos) << r.out << r.err << clipcap::read_file(dir + "/node1.err");
  const auto diff = max_weight_difference(dir + "/local/last/model.safetensors", dir + "/nodes/last/model.safetensors");
  EXPECT_LT(diff.most, 1e-6) << diff.where;
  EXPECT_LT(diff.most_keys, 1e-6);
}

TEST(DistributedCli, AKilledRankStopsTheOthersNamingItAndTheRunResumesOnAnyNumberOfRanks) {
  const std::string data = make_dataset("dist-kill", 8, 2);
  const std::string dir = temp_dir("dist-kill-runs"), out = dir + "/run";
  const std::string config = caption_config(dir, 1, 6);  // 4 steps an epoch
  // Slow steps, so rank 1 dies mid-run; started by hand with torchrun's environment.
  const std::string env = "CLIPCAP_TEST_STEP_DELAY_MS=150 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                          std::to_string(free_port());
  const std::string cmd = train_cmd(config, data, out) + " --dist-timeout 20";
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run("(" + env + " RANK=1 " + cmd + " 2>/dev/null & victim=$!; " + env + " RANK=0 " + cmd + " 2>" + dir +
               "/rank0.err & survivor=$!; for i in $(seq 600); do [ -s " + out +
               "/last/trainer_state.json ] && break; sleep 0.05; done; kill -9 $victim; wait $survivor; echo exit=$?)");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string err = clipcap::read_file(dir + "/rank0.err");
  EXPECT_NE(r.out.find("exit=1"), std::string::npos) << r.out << err;
  EXPECT_NE(err.find("rank 1 stopped"), std::string::npos) << err;
  EXPECT_LT(seconds, 40) << "the survivor must stop within the timeout";
  EXPECT_FALSE(fs::exists(out + "/last.tmp"));
  const size_t logged = read_metrics(out).size();
  ASSERT_GE(logged, 1u);
  ASSERT_LT(logged, 6u) << "the rank was killed after the run ended";

  // The same world size, stopped after two more steps; then one process to the end.
  auto again = run("CLIPCAP_TEST_STOP_AFTER_STEPS=2 " + tool("clipcap-train") + " --resume " + out +
                   " --threads 1 --nproc-per-node 2 --master-port " + std::to_string(free_port()));
  EXPECT_EQ(again.exit_code, 130) << again.err << clipcap::read_file(dir + "/rank0.err");
  auto last = run(tool("clipcap-train") + " --resume " + out + " --threads 1");
  ASSERT_EQ(last.exit_code, 0) << last.err;
  auto metrics = read_metrics(out);
  ASSERT_EQ(metrics.size(), 6u);
  for (size_t e = 0; e < metrics.size(); ++e) {
    EXPECT_EQ(metrics[e]["epoch"], static_cast<int>(e + 1));
    EXPECT_EQ(metrics[e]["step"], static_cast<int>(4 * (e + 1)));
  }
}

TEST(DistributedCli, LauncherNamesAKilledRankAndExitsNonZero) {
  const std::string data = make_dataset("dist-launch-kill", 8, 2);
  const std::string dir = temp_dir("dist-launch-kill-runs"), out = dir + "/run";
  const std::string cmd = "CLIPCAP_TEST_STEP_DELAY_MS=150 " + train_cmd(caption_config(dir, 1, 20), data, out) +
                          " --dist-timeout 20 --nproc-per-node 2 --master-port " + std::to_string(free_port());
  auto r = run("(" + cmd + " & launcher=$!; for i in $(seq 600); do [ -s " + out +
               "/metrics.jsonl ] && break; sleep 0.05; done; for p in $(pgrep -P $launcher); do "
               "tr '\\0' '\\n' </proc/$p/environ | grep -qx RANK=1 && kill -9 $p; done; wait $launcher; echo exit=$?)");
  EXPECT_NE(r.out.find("exit=1"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("rank 1 (pid"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("was killed by signal 9"), std::string::npos) << r.err;
}

TEST(DistributedCli, ClearErrorsForAnUnreachableStoreAnUnevenBatchAndNccl) {
  const std::string data = make_dataset("dist-errors", 8, 2);
  const std::string dir = temp_dir("dist-errors-runs");
  const std::string config = caption_config(dir, 2, 1);
  const std::string port = std::to_string(free_port());
  // Rank 1 alone: nobody hosts the store.
  const auto t0 = std::chrono::steady_clock::now();
  auto lonely = run("WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port + " " +
                    train_cmd(config, data, dir + "/lonely") + " --dist-timeout 2");
  EXPECT_EQ(lonely.exit_code, 1);
  EXPECT_NE(lonely.err.find("cannot reach the rendezvous store at 127.0.0.1:" + port), std::string::npos) << lonely.err;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30);

  auto uneven = run(train_cmd(config, data, dir + "/uneven") + " --nproc-per-node 3 --master-port " +
                    std::to_string(free_port()));
  EXPECT_EQ(uneven.exit_code, 1);
  EXPECT_NE(uneven.err.find("batch_size 4 is the global batch and must split evenly over the 3 ranks"),
            std::string::npos)
      << uneven.err;
  EXPECT_FALSE(fs::exists(dir + "/uneven/last"));

  auto nccl = run("WORLD_SIZE=2 RANK=0 " + train_cmd(config, data, dir + "/nccl") + " --dist-backend nccl");
  EXPECT_EQ(nccl.exit_code, 1);
  EXPECT_NE(nccl.err.find("nccl needs libtorch built with CUDA"), std::string::npos) << nccl.err;

  // Launcher flags and torchrun variables that cannot describe a run: one line naming them.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {train_cmd(config, data, dir + "/b1") + " --nproc-per-node 2 --nnodes 2 --node-rank 2", "--node-rank 2 is not below --nnodes 2"},
      {train_cmd(config, data, dir + "/b2") + " --nproc-per-node -1", "--nproc-per-node must be at least 1"},
      {train_cmd(config, data, dir + "/b3") + " --nnodes 2", "--nnodes/--node-rank need --nproc-per-node"},
      {"WORLD_SIZE=2 RANK=x " + train_cmd(config, data, dir + "/b4"), "RANK='x' is not a count or an index"},
      {"WORLD_SIZE=2 RANK=2 " + train_cmd(config, data, dir + "/b5"), "RANK=2 is not below WORLD_SIZE=2"},
      {"WORLD_SIZE=2 " + train_cmd(config, data, dir + "/b6"), "RANK is not set"},
  };
  for (const auto& [cmd, message] : bad) {
    auto r = run(cmd);
    EXPECT_EQ(r.exit_code, 1) << cmd;
    EXPECT_NE(r.err.find(message), std::string::npos) << cmd << "\n" << r.err;
  }
  for (const char* out : {"/b1", "/b2", "/b3", "/b4", "/b5", "/b6"}) EXPECT_FALSE(fs::exists(dir + out)) << out;
}
