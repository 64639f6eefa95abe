// clipcap-train, the executable: flags, Ctrl-C and resume, and the data -> train -> eval pipeline.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "common/json_util.h"
#include "data/embedding_dataset.h"
#include "model/captioner.h"
#include "tests/test_support.h"
#include "tests/test_train_support.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace clipcap::test;

TEST(TrainCli, TrainsWithFlagsAndTheModelCaptionsImagesWithClipcapInfer) {
  const std::string data = make_dataset("cli", 4, 1);
  const std::string dir = temp_dir("cli-run"), run_dir = dir + "/run";
  std::ofstream(dir + "/cfg.json") << "{\"_comment\": \"tiny\", \"ep_len\": 2, \"num_layers\": 1, \"n_heads\": 4, "
                                      "\"batch_size_exp\": 2, \"max_len\": 12, \"epochs\": 5}";
  auto r = run(tool("clipcap-train") + " --config " + dir + "/cfg.json --data " + data + " --out " + run_dir +
               " --text-model " + fixture("tiny-gpt2") + " --epochs 2 --freeze full --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("epoch 2/2"), std::string::npos) << r.err;
  EXPECT_EQ(read_metrics(run_dir).size(), 2u);
  auto saved = clipcap::read_json(run_dir + "/train_config.json");
  EXPECT_EQ(saved["config"]["epochs"], 2);
  EXPECT_EQ(saved["config"]["freeze"], "full");
  auto infer = run(tool("clipcap-infer") + " image --model " + run_dir + "/best " + fixture("images/rgb_160x120.png"));
  EXPECT_EQ(infer.exit_code, 0) << infer.err;

  auto typo = run(tool("clipcap-train") + " --config " + dir + "/cfg.json --data " + data + " --out " + dir +
                  "/r2 --set epohcs=3");
  EXPECT_EQ(typo.exit_code, 1);
  EXPECT_NE(typo.err.find("epohcs"), std::string::npos) << typo.err;
  auto resume_conflict = run(tool("clipcap-train") + " --resume " + run_dir + " --epochs 9");
  EXPECT_EQ(resume_conflict.exit_code, 1);
  EXPECT_NE(resume_conflict.err.find("--epochs"), std::string::npos) << resume_conflict.err;

  // --dtype, as every tool takes it: bf16 is the config's bf16 autocast; a dtype training lacks is refused.
  auto bf16 = run(tool("clipcap-train") + " --config " + dir + "/cfg.json --data " + data + " --out " + dir +
                  "/r3 --text-model " + fixture("tiny-gpt2") + " --epochs 1 --threads 1 --dtype bf16");
  ASSERT_EQ(bf16.exit_code, 0) << bf16.err;
  EXPECT_EQ(clipcap::read_json(dir + "/r3/train_config.json")["config"]["autocast"], "bf16");
  auto f16 = run(tool("clipcap-train") + " --config " + dir + "/cfg.json --data " + data + " --out " + dir +
                 "/r4 --dtype f16");
  EXPECT_EQ(f16.exit_code, 1);
  EXPECT_NE(f16.err.find("--dtype f16"), std::string::npos) << f16.err;
  EXPECT_FALSE(fs::exists(dir + "/r4"));
  // A resumed run keeps its own autocast: --dtype there is refused, and the run is left as it was.
  const std::string before = clipcap::read_file(run_dir + "/metrics.jsonl");
  auto resume_dtype = run(tool("clipcap-train") + " --resume " + run_dir + " --dtype bf16");
  EXPECT_EQ(resume_dtype.exit_code, 1);
  EXPECT_NE(resume_dtype.err.find("drop --dtype"), std::string::npos) << resume_dtype.err;
  EXPECT_EQ(clipcap::read_file(run_dir + "/metrics.jsonl"), before);
}

TEST(TrainCli, StopAfterStepsExits130AndResumeFinishes) {
  const std::string data = make_dataset("cli-stop", 8, 1);
  const std::string run_dir = temp_dir("cli-stop-run") + "/run";
  const std::string base = tool("clipcap-train");
  auto r = run("CLIPCAP_TEST_STOP_AFTER_STEPS=1 " + base + " --data " + data + " --out " + run_dir + " --clip-model " +
               fixture("tiny-clip") + " --text-model " + fixture("tiny-gpt2") +
               " --set ep_len=2 --set num_layers=1 --set n_heads=4 --set batch_size_exp=2 --epochs 2 --threads 1" +
               " --log-every 1");
  EXPECT_EQ(r.exit_code, 130) << r.err;
  EXPECT_NE(r.err.find("--resume " + run_dir), std::string::npos) << r.err;
  // The first step already learns: the upstream triangle over 4 steps peaks at int(0.33 * 4) = 1,
  // so step 1 runs at the full lr (upstream's ran at 0).
  EXPECT_NE(r.err.find("step 1 | epoch 1 | lr 3.000e-03 | loss "), std::string::npos) << r.err;
  auto r2 = run(base + " --resume " + run_dir + " --threads 1 --log-every 1");
  EXPECT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(read_metrics(run_dir).size(), 2u);
  // One record per step across the stop, none twice: 2 epochs of 2 steps.
  std::vector<nlohmann::json> steps;
  std::ifstream step_log(run_dir + "/steps.jsonl");
  for (std::string line; std::getline(step_log, line);) steps.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(steps.size(), 4u) << clipcap::read_file(run_dir + "/steps.jsonl");
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(steps[i]["step"], i + 1);
    EXPECT_EQ(steps[i]["epoch"], i / 2 + 1);
    EXPECT_GT(steps[i]["lr"].get<double>(), 0.0) << "step " << i + 1;
    EXPECT_TRUE(steps[i]["loss"].is_number()) << "step " << i + 1;
    EXPECT_GT(steps[i]["tokens_per_s"].get<double>(), 0.0);
  }
  EXPECT_DOUBLE_EQ(steps[0]["lr"].get<double>(), 3e-3);
  EXPECT_LT(steps[3]["lr"].get<double>(), steps[0]["lr"].get<double>());  // on the way down
  const RunResult bad = run(base + " --resume " + run_dir + " --log-every -2");
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_NE(bad.err.find("'log_every' must be >= 0"), std::string::npos) << bad.err;
}

TEST(TrainCli, CtrlCSavesACheckpointExits130AndTheRunResumes) {
  const std::string data = make_dataset("cli-int", 8, 1);
  const std::string run_dir = temp_dir("cli-int-run") + "/run";
  const std::string train = tool("clipcap-train") + " --data " + data + " --clip-model " + fixture("tiny-clip") +
                            " --text-model " + fixture("tiny-gpt2") +
                            " --set ep_len=2 --set num_layers=1 --set n_heads=4 --set batch_size_exp=1 --threads 1";
  // A long run, interrupted once its first epoch is logged: a real SIGINT, as a terminal sends it.
  auto r = run("(" + train + " --out " + run_dir + " --epochs 500 & pid=$!; for i in $(seq 600); do [ -s " + run_dir +
               "/metrics.jsonl ] && break; sleep 0.1; done; kill -INT $pid; wait $pid; echo exit=$?)");
  EXPECT_NE(r.out.find("exit=130"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("interrupted: saving a checkpoint"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(run_dir + "/last/trainer_state.json"));
  EXPECT_TRUE(fs::exists(run_dir + "/best/model.safetensors"));
  EXPECT_FALSE(fs::exists(run_dir + "/last.tmp"));
  const size_t logged = read_metrics(run_dir).size();
  ASSERT_GE(logged, 1u);
  auto infer = run(tool("clipcap-infer") + " image --model " + run_dir + "/last " + fixture("images/rgb_160x120.png"));
  EXPECT_EQ(infer.exit_code, 0) << infer.err;
  // The resumed run goes on from the checkpoint: 9 more steps = two more epochs of 4, then a stop.
  auto again = run("CLIPCAP_TEST_STOP_AFTER_STEPS=9 " + tool("clipcap-train") + " --resume " + run_dir + " --threads 1");
  EXPECT_EQ(again.exit_code, 130) << again.err;
  auto metrics = read_metrics(run_dir);
  ASSERT_GE(metrics.size(), logged + 1) << again.err;
  for (size_t e = 0; e < metrics.size(); ++e) EXPECT_EQ(metrics[e]["epoch"], static_cast<int>(e + 1));
}

TEST(TrainCli, DataTrainEvalPipelineOnRealImages) {
  const std::string dir = temp_dir("pipeline");
  const std::vector<std::pair<std::string, std::string>> items = {{"rgb_160x120.png", "A red and green square."},
                                                                  {"tiny_rgb_20x13.png", "A wide striped banner."},
                                                                  {"gray_37x53.png", "A gray picture of nothing."},
                                                                  {"rgba_40x40.png", "Two cats sleep on a sofa."}};
  fs::create_directories(dir + "/images");
  std::string jsonl;
  for (const auto& [image, caption] : items) {
    fs::copy_file(fixture("images/" + image), dir + "/images/" + image);
    jsonl += nlohmann::json{{"image", image}, {"caption", caption}, {"split", "train"}}.dump() + "\n";
  }
  std::ofstream(dir + "/captions.jsonl") << jsonl;
  auto data = run(tool("clipcap-data") + " build --format jsonl --split-column split --captions " + dir +
                  "/captions.jsonl --images " + dir + "/images --clip " + fixture("tiny-clip") + " --out " + dir +
                  "/data --threads 1");
  ASSERT_EQ(data.exit_code, 0) << data.err;
  auto train = run(tool("clipcap-train") + " --data " + dir + "/data --out " + dir + "/run --text-model " +
                   fixture("tiny-gpt2") + " --set ep_len=2 --set num_layers=1 --set n_heads=4 --set batch_size_exp=2" +
                   " --freeze full --schedule constant --lr 1e-2 --dropout 0 --epochs 60 --threads 1");
  ASSERT_EQ(train.exit_code, 0) << train.err;
  auto eval = run(tool("clipcap-eval") + " -m " + dir + "/run/best --data " + dir + "/data --split train --out " + dir +
                  "/report --threads 1");
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  auto metrics = clipcap::read_json(dir + "/report/metrics.json");
  EXPECT_EQ(metrics["counts"]["images"], 4);
  EXPECT_NEAR(metrics["metrics"]["BLEU-4"].get<double>(), 1.0, 1e-6)
      << clipcap::read_file(dir + "/report/predictions.jsonl") << train.err;
  const std::string html = clipcap::read_file(dir + "/report/report.html");
  EXPECT_NE(html.find("<svg"), std::string::npos) << "no training curves from the run's metrics.jsonl";
  EXPECT_NE(html.find("Two cats sleep on a sofa."), std::string::npos);
}

// A kill -9 at every stage of a checkpoint save (before, between and after its two renames; at the
// first save and at a later one) ends, after the same command (or --resume, when it says so), in
// the checkpoint an uninterrupted run writes.
TEST(TrainCli, AKillAtEveryStageOfACheckpointSaveEndsInTheSameCheckpoint) {
  const std::string data = make_dataset("cli-kill", 8, 1);
  const std::string dir = temp_dir("cli-kill");
  const std::string args = " --data " + data + " --clip-model " + fixture("tiny-clip") + " --text-model " +
                           fixture("tiny-gpt2") +
                           " --set ep_len=2 --set num_layers=1 --set n_heads=4 --set batch_size_exp=2 --epochs 2 --threads 1";
  const auto train = [&](const std::string& out, const std::string& env) {
    return run(env + tool("clipcap-train") + args + " --out " + out);
  };
  const RunResult ref = train(dir + "/ref", "");
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  const std::string want = clipcap::read_file(dir + "/ref/last/model.safetensors");
  for (const std::string stage : {"before", "between", "after"}) {
    for (int save : {1, 2}) {
      const std::string out = dir + "/" + stage + "-" + std::to_string(save);
      const RunResult killed = train(out, "CLIPCAP_TEST_KILL_REPLACE=" + stage + ":" + std::to_string(save) + ":last ");
      ASSERT_EQ(killed.exit_code, 86) << stage << " " << save << ": " << killed.err;
      RunResult again = train(out, "");
      if (again.exit_code != 0 && again.err.find("resume it with --resume") != std::string::npos)
        again = run(tool("clipcap-train") + " --resume " + out + " --threads 1");
      ASSERT_EQ(again.exit_code, 0) << stage << " " << save << ": " << again.err;
      EXPECT_EQ(clipcap::read_file(out + "/last/model.safetensors"), want) << stage << " " << save;
      EXPECT_EQ(read_metrics(out).size(), 2u) << stage << " " << save;
      EXPECT_FALSE(fs::exists(out + "/last.old")) << stage << " " << save;
    }
  }
  // --resume on a run that stopped before its first checkpoint starts it over too.
  const std::string early = dir + "/early";
  ASSERT_EQ(train(early, "CLIPCAP_TEST_KILL_REPLACE=before:1:last ").exit_code, 86);
  const RunResult resumed = run(tool("clipcap-train") + " --resume " + early + " --threads 1");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("stopped before its first checkpoint: training starts over"), std::string::npos) << resumed.err;
  EXPECT_EQ(clipcap::read_file(early + "/last/model.safetensors"), want);
}
