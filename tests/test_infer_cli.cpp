// clipcap-infer end to end: the real binary imports the upstream fixture and captions the
// fixture images exactly like upstream; bad inputs give one clear line and exit 1.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/json_util.h"
#include "image/image_io.h"
#include "tests/test_support.h"
#include "tests/test_video_support.h"

namespace fs = std::filesystem;

namespace clipcap {
namespace {

using test::fixture;
using test::run;
using test::tool;

std::string q(const std::string& s) { return "'" + s + "'"; }

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The upstream fixture imported once through the CLI.
const std::string& imported_model() {
  static std::string dir = [] {
    std::string d = test::temp_dir("infer-cli") + "/legacy";
    auto r = run(q(tool("clipcap-infer")) + " import-upstream --checkpoint " + q(fixture("upstream-legacy/model.pt")) +
                 " --config " + q(fixture("upstream-legacy/upstream_config.json")) + " --out " + q(d));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return d;
  }();
  return dir;
}

struct Case {
  std::string image, caption;
};
std::vector<Case> legacy_cases() {
  std::vector<Case> out;
  const auto legacy = read_json(fixture("expected/legacy.json"));  // keep it alive for the loop
  for (const auto& c : legacy["cases"])
    out.push_back({fixture(c["image"]), c["caption"]});
  return out;
}

TEST(InferCli, ImportThenCaptionGivesUpstreamCaptions) {
  const std::string& model = imported_model();
  ASSERT_TRUE(fs::exists(model + "/config.json"));
  std::string cmd = q(tool("clipcap-infer")) + " image --model " + q(model) + " --batch-size 4";
  std::vector<std::string> want;
  for (const auto& c : legacy_cases()) {
    cmd += " " + q(c.image);
    want.push_back(c.caption);
  }
  auto r = run(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines(r.out), want);
}

TEST(InferCli, UnreadableImageKeepsLinesAlignedAndExitsOne) {
  auto cases = legacy_cases();
  ASSERT_GE(cases.size(), 2u);
  std::string bad = test::temp_dir("infer-cli") + "/not-an-image.png";
  {
    std::ofstream(bad) << "this is not a PNG";
  }
  auto r = run(q(tool("clipcap-infer")) + " image --model " + q(imported_model()) + " " + q(cases[0].image) + " " +
               q(bad) + " " + q(cases[1].image));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not-an-image.png"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  EXPECT_EQ(lines(r.out), (std::vector<std::string>{cases[0].caption, "", cases[1].caption}));

  r = run(q(tool("clipcap-infer")) + " image --model " + q(imported_model()) + " /nonexistent/cat.jpg");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/cat.jpg"), std::string::npos) << r.err;
}

TEST(InferCli, BadModelDirectories) {
  auto r = run(q(tool("clipcap-infer")) + " image --model /nonexistent/model " + q(legacy_cases()[0].image));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/model"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
  EXPECT_TRUE(r.out.empty());

  r = run(q(tool("clipcap-infer")) + " image --model " + q(fixture("tiny-gpt2")) + " " + q(legacy_cases()[0].image));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("looks like an HF GPT-2 directory"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
}

TEST(InferCli, LegacyModelRefusesBeamSearch) {
  auto r = run(q(tool("clipcap-infer")) + " image --model " + q(imported_model()) + " --beam 3 " +
               q(legacy_cases()[0].image));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("legacy"), std::string::npos) << r.err;
}

TEST(InferCli, ImportErrorsNameTheFile) {
  std::string out = test::temp_dir("infer-cli") + "/never";
  auto r = run(q(tool("clipcap-infer")) + " import-upstream --checkpoint /nonexistent/model.pt --config " +
               q(fixture("upstream-legacy/upstream_config.json")) + " --out " + q(out));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/model.pt"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));

  // A config whose clip_model cannot be found, without --clip.
  std::string cfg_dir = test::temp_dir("infer-cli");
  auto uc = read_json(fixture("upstream-legacy/upstream_config.json"));
  uc["clip_model"] = "openai/clip-vit-base-patch32";
  write_json_atomic(cfg_dir + "/upstream_config.json", uc);
  r = run(q(tool("clipcap-infer")) + " import-upstream --checkpoint " + q(fixture("upstream-legacy/model.pt")) +
          " --config " + q(cfg_dir + "/upstream_config.json") + " --out " + q(out));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--clip"), std::string::npos) << r.err;
  // ... and with --clip (and --gpt2, the config's relative text_model no longer resolves) it works.
  r = run(q(tool("clipcap-infer")) + " import-upstream --checkpoint " + q(fixture("upstream-legacy/model.pt")) +
          " --config " + q(cfg_dir + "/upstream_config.json") + " --clip " + q(fixture("tiny-clip")) + " --gpt2 " + q(fixture("tiny-gpt2")) +
          " --out " + q(out));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
}

// --version names the program, the version and the BLAS kernels: what a bug or speed report needs.
TEST(Cli, EveryExecutableSaysItsVersionAndBlasKernels) {
  for (const std::string name : {"clipcap-data", "clipcap-train", "clipcap-eval", "clipcap-infer"}) {
    auto r = run(q(tool(name)) + " --version");
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.err;
    EXPECT_EQ(r.out.rfind(name + " " + CLIPCAP_VERSION + " (libtorch ", 0), 0u) << r.out;
    // scripts/setup.sh installs OpenBLAS (the reference BLAS is ~60x slower): it must be the one in use.
    EXPECT_NE(r.out.find("OpenBLAS "), std::string::npos) << r.out;
  }
}

TEST(InferCli, HelpShowsDefaultsAndUsageErrorsExitTwo) {
  auto r = run(q(tool("clipcap-infer")) + " image --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--max-len"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("40"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--beam-size"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--threads"), std::string::npos) << r.out;

  r = run(q(tool("clipcap-infer")) + " image " + q(legacy_cases()[0].image));  // no --model
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--model"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace clipcap

namespace clipcap {
namespace {
// Bad runtime flags stop before any work with a one-line message naming the flag value, exit 1.
TEST(InferCli, BadRuntimeFlagsAreRefusedWithAMessage) {
  const std::string image = q(fixture("images/rgb_160x120.png"));
  const std::string base = q(tool("clipcap-infer")) + " image --model " + q(imported_model()) + " ";
  auto dtype = run(base + "--dtype f64 " + image);
  EXPECT_EQ(dtype.exit_code, 1) << dtype.err;
  EXPECT_NE(dtype.err.find("unknown dtype 'f64'"), std::string::npos) << dtype.err;
  EXPECT_TRUE(dtype.out.empty()) << dtype.out;
  auto threads = run(base + "--threads -1 " + image);
  EXPECT_EQ(threads.exit_code, 1) << threads.err;
  EXPECT_NE(threads.err.find("--threads"), std::string::npos) << threads.err;
  auto device = run(base + "--device tpu " + image);
  EXPECT_EQ(device.exit_code, 1) << device.err;
  EXPECT_NE(device.err.find("unknown device 'tpu'"), std::string::npos) << device.err;
}

// --dtype int8: the embedded model's captions of the fixture images are f32's (CLIP, mapping and
// GPT-2 all on int8 weights); training and dataset building refuse it by name before any work.
TEST(InferCli, Int8WeightsCaptionLikeF32AndAreForCaptioningOnly) {
  std::string images;
  for (const auto& f : fs::directory_iterator(fixture("images"))) images += " " + q(f.path().string());
  const std::string base = q(tool("clipcap-infer")) + " image --threads 1 --model " + q(test::source_path("models/emoji-tiny"));
  const auto f32 = run(base + " --dtype f32" + images), int8 = run(base + " --dtype int8" + images);
  ASSERT_EQ(f32.exit_code, 0) << f32.err;
  ASSERT_EQ(int8.exit_code, 0) << int8.err;
  EXPECT_EQ(std::count(f32.out.begin(), f32.out.end(), '\n'), 6) << f32.out;
  // Photos are far from any emoji: one near tie may flip (the 95 % bar is over the held-out split,
  // tests/test_int8_captioner.cpp); five of the six must be f32's caption.
  const auto a = test::split_lines(f32.out), b = test::split_lines(int8.out);
  ASSERT_EQ(a.size(), b.size()) << int8.out;
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  EXPECT_GE(same, a.size() - 1) << "f32:\n" << f32.out << "int8:\n" << int8.out;
  const std::string dir = test::temp_dir("int8-refused");
  for (const std::string& cmd :
       {q(tool("clipcap-train")) + " --config " + q(test::source_path("configs/emoji-tiny.json")) + " --data " + dir +
            "/none --out " + dir + "/run --dtype int8",
        q(tool("clipcap-data")) + " build --format karpathy --captions " + dir + "/none.json --images " + dir +
            " --clip " + q(test::source_path("models/emoji-clip")) + " --out " + dir + "/data --dtype int8"}) {
    const auto r = run(cmd);
    EXPECT_EQ(r.exit_code, 1) << cmd << "\n" << r.err;
    EXPECT_NE(r.err.find("--dtype int8 (int8 weights) is for captioning only"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(dir + "/run"));
  EXPECT_FALSE(fs::exists(dir + "/data"));
}

// --rerank clip: the JSON names the chosen candidate's scores; one candidate writes the plain
// captions; without a CLIP to rerank with it is refused before any image is read.
TEST(InferCli, RerankedCaptionsCarryTheirScoresAndOneCandidateIsPlainDecoding) {
  std::string images;
  for (const auto& f : fs::directory_iterator(fixture("images"))) images += " " + q(f.path().string());
  const std::string base = q(tool("clipcap-infer")) + " image --threads 1 --json --model " +
                           q(test::source_path("models/emoji-tiny")) + " --beam 3";
  const std::string clip = " --rerank-clip " + q(test::source_path("models/emoji-clip"));
  const auto plain = run(base + images), one = run(base + " --rerank clip --rerank-candidates 1" + clip + images),
             eight = run(base + " --rerank clip --rerank-candidates 8 --rerank-weight 0.3" + clip + images);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ASSERT_EQ(one.exit_code, 0) << one.err;
  ASSERT_EQ(eight.exit_code, 0) << eight.err;
  const auto p = nlohmann::json::parse(plain.out), o = nlohmann::json::parse(one.out), e = nlohmann::json::parse(eight.out);
  ASSERT_EQ(p.size(), 6u);
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_FALSE(p[i].contains("rerank"));
    EXPECT_EQ(o[i]["caption"], p[i]["caption"]) << p[i]["path"];
    EXPECT_EQ(o[i]["rerank"]["candidates"], 1);
    const auto& r = e[i]["rerank"];
    EXPECT_EQ(r["candidates"], 8);
    EXPECT_GE(r["clip_similarity"].get<double>(), -1.0);
    EXPECT_LE(r["clip_similarity"].get<double>(), 1.0);
    EXPECT_LT(r["mean_logprob"].get<double>(), 0.0);
    EXPECT_TRUE(r["rerank_score"].is_number());
  }
  const auto missing = run(base + " --rerank clip" + images);
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
  EXPECT_NE(missing.err.find("--rerank clip needs --rerank-clip DIR"), std::string::npos) << missing.err;
  EXPECT_TRUE(missing.out.empty()) << missing.out;
  const auto not_clip = run(base + " --rerank clip --rerank-clip " + q(fixture("tiny-gpt2")) + images);
  EXPECT_EQ(not_clip.exit_code, 1) << not_clip.err;
  EXPECT_NE(not_clip.err.find("--rerank-clip needs an HF CLIP directory"), std::string::npos) << not_clip.err;
}

// An unknown decoding strategy or caption backend: one line naming the flag and the choices, exit 1.
TEST(InferCli, UnknownStrategyOrBackendIsRefusedNamingTheChoices) {
  const std::string image = q(fixture("images/rgb_160x120.png"));
  const std::string base = q(tool("clipcap-infer")) + " image --model " + q(imported_model()) + " ";
  auto strategy = run(base + "--strategy nucleus " + image);
  EXPECT_EQ(strategy.exit_code, 1) << strategy.err;
  EXPECT_NE(strategy.err.find("--strategy"), std::string::npos) << strategy.err;
  EXPECT_NE(strategy.err.find("greedy, sample, beam"), std::string::npos) << strategy.err;
  EXPECT_TRUE(strategy.out.empty()) << strategy.out;
  auto backend = run(base + "--backend remote " + image);
  EXPECT_EQ(backend.exit_code, 1) << backend.err;
  EXPECT_NE(backend.err.find("unknown backend 'remote' (local, openai)"), std::string::npos) << backend.err;
  EXPECT_TRUE(backend.out.empty()) << backend.out;
}
}  // namespace
}  // namespace clipcap

namespace clipcap {
namespace {
// image --json / --jsonl / directories / stdin / --render, on the upstream fixture's known captions.
TEST(InferCli, ImageJsonAndJsonlCarryPathCaptionOrError) {
  auto cases = legacy_cases();
  ASSERT_GE(cases.size(), 2u);
  const std::string bad = test::temp_dir("infer-cli-json") + "/broken.png";
  { std::ofstream(bad) << "not a png"; }
  const std::string base = q(tool("clipcap-infer")) + " image --model " + q(imported_model()) + " ";
  const std::string inputs = q(cases[0].image) + " " + q(bad) + " " + q(cases[1].image);

  auto r = run(base + "--json " + inputs);
  EXPECT_EQ(r.exit_code, 1);
  auto arr = nlohmann::json::parse(r.out);
  ASSERT_TRUE(arr.is_array());
  ASSERT_EQ(arr.size(), 3u);
  EXPECT_EQ(arr[0]["path"], cases[0].image);
  EXPECT_EQ(arr[0]["caption"], cases[0].caption);
  EXPECT_EQ(arr[1]["path"], bad);
  EXPECT_NE(arr[1]["error"].get<std::string>().find("broken.png"), std::string::npos);
  EXPECT_FALSE(arr[1].contains("caption"));
  EXPECT_EQ(arr[2]["caption"], cases[1].caption);

  r = run(base + "--jsonl " + inputs);
  EXPECT_EQ(r.exit_code, 1);
  auto rows = lines(r.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(nlohmann::json::parse(rows[0])["caption"], cases[0].caption);
  EXPECT_TRUE(nlohmann::json::parse(rows[1]).contains("error"));
  EXPECT_EQ(nlohmann::json::parse(rows[2])["path"], cases[1].image);

  r = run(base + "--json --jsonl " + inputs);
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

TEST(InferCli, ImageDirectoriesRecursivelySortedAndPathsFromStdin) {
  auto cases = legacy_cases();
  ASSERT_GE(cases.size(), 2u);
  const std::string dir = test::temp_dir("infer-cli-dir");
  fs::create_directories(dir + "/b/c");
  fs::copy_file(cases[0].image, dir + "/b/c/one.png");
  fs::copy_file(cases[1].image, dir + "/a.png");
  { std::ofstream(dir + "/b/readme.txt") << "not an image, skipped"; }
  const std::string base = q(tool("clipcap-infer")) + " image --model " + q(imported_model()) + " --jsonl ";
  auto r = run(base + q(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = lines(r.out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(rows[0])["path"], dir + "/a.png");
  EXPECT_EQ(nlohmann::json::parse(rows[0])["caption"], cases[1].caption);
  EXPECT_EQ(nlohmann::json::parse(rows[1])["path"], dir + "/b/c/one.png");
  EXPECT_EQ(nlohmann::json::parse(rows[1])["caption"], cases[0].caption);

  r = run("printf '%s\\n\\n%s\\n' " + q(cases[1].image) + " " + q(cases[0].image) + " | " + q(tool("clipcap-infer")) +
          " image --model " + q(imported_model()) + " -");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines(r.out), (std::vector<std::string>{cases[1].caption, cases[0].caption}));
}

TEST(InferCli, ImageRenderWritesTheImageWithItsCaption) {
  auto cases = legacy_cases();
  const std::string out = test::temp_dir("infer-cli-render") + "/renders";
  auto r = run(q(tool("clipcap-infer")) + " image --model " + q(imported_model()) + " --render " + q(out) + " " +
               q(fixture("images/rgb_160x120.png")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string render = out + "/rgb_160x120-R160.jpg";
  ASSERT_TRUE(fs::exists(render)) << r.err;
  Image img = read_image(render);
  EXPECT_GT(img.height * 160, 120 * img.width) << "no caption band under the image";
}
}  // namespace
}  // namespace clipcap
