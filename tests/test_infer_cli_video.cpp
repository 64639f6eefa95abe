// clipcap-infer video end to end: the real binary on generated videos with a tiny model. Cues tile
// the video, scene cues start at the real cuts, SRT/VTT parse with ffmpeg, bad videos give one
// line and exit 1, batches resume after a kill and split into shards.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/atomic_file.h"
#include "tests/test_support.h"
#include "tests/test_video_support.h"

namespace fs = std::filesystem;

namespace clipcap {
namespace {

using test::shell_quote;
using test::split_lines;

std::string infer_video(const std::string& args) {
  return shell_quote(test::tool("clipcap-infer")) + " video -m " + shell_quote(test::tiny_model_dir()) +
         " --max-len 6 --threads 1 " + args;
}

nlohmann::json read_json_file(const std::string& path) { return nlohmann::json::parse(read_file(path)); }

void expect_cues_tile(const nlohmann::json& cues, double duration) {
  ASSERT_TRUE(cues.is_array());
  ASSERT_FALSE(cues.empty());
  EXPECT_EQ(cues.front()["start_s"].get<double>(), 0.0);
  EXPECT_NEAR(cues.back()["end_s"].get<double>(), duration, 1e-9);
  for (size_t i = 0; i + 1 < cues.size(); ++i) {
    EXPECT_EQ(cues[i]["end"], cues[i + 1]["start"]) << "gap after cue " << i;
    EXPECT_LT(cues[i]["start_s"].get<double>(), cues[i]["end_s"].get<double>());
    EXPECT_NE(cues[i]["text"], cues[i + 1]["text"]) << "unmerged neighbours " << i;
  }
  for (const auto& c : cues) {
    EXPECT_EQ(c["lang"], "en");
    EXPECT_GE(c["frame_s"].get<double>(), c["start_s"].get<double>() - 1e-9);
  }
}

TEST(InferCliVideo, UniformWritesSrtVttJsonThatTileTheVideo) {
  auto video = test::colour_video();
  const std::string out = test::temp_dir("cli-video");
  auto r = test::run(infer_video("-N 8 --out-dir " + shell_quote(out) + " " + shell_quote(video.path)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string stem = out + "/" + fs::path(video.path).stem().string();
  auto cues = read_json_file(stem + "_caption.json");
  expect_cues_tile(cues, video.duration_s);
  // the cues on stdout, one line each
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), cues.size());
  EXPECT_EQ(lines[0].rfind("[00:00:00.000 --> ", 0), 0u) << lines[0];
  // ffmpeg reads every cue of both subtitle files
  EXPECT_EQ(test::ffmpeg_subtitle_cues(stem + "_caption.srt"), static_cast<int>(cues.size()));
  EXPECT_EQ(test::ffmpeg_subtitle_cues(stem + "_caption.vtt"), static_cast<int>(cues.size()));
  EXPECT_EQ(read_file(stem + "_caption.vtt").rfind("WEBVTT\n", 0), 0u);
  // nothing but the outputs (no temporary files left behind)
  EXPECT_EQ(std::distance(fs::directory_iterator(out), fs::directory_iterator()), 3);
}

// --rerank clip on a video: every cue of the JSON subtitles says how its caption was chosen.
TEST(InferCliVideo, RerankedCuesCarryTheirScores) {
  auto video = test::colour_video();
  const std::string out = test::temp_dir("cli-video-rerank");
  auto r = test::run(shell_quote(test::tool("clipcap-infer")) + " video -m " +
                     shell_quote(test::source_path("models/emoji-tiny")) + " --threads 1 -N 4 --beam 3 --rerank clip "
                     "--rerank-candidates 4 --rerank-clip " + shell_quote(test::source_path("models/emoji-clip")) +
                     " --out-dir " + shell_quote(out) + " " + shell_quote(video.path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto cues = read_json_file(out + "/" + fs::path(video.path).stem().string() + "_caption.json");
  expect_cues_tile(cues, video.duration_s);
  for (const auto& c : cues) {
    ASSERT_TRUE(c.contains("rerank")) << c.dump();
    EXPECT_EQ(c["rerank"]["candidates"], 4);
    EXPECT_LE(std::abs(c["rerank"]["clip_similarity"].get<double>()), 1.0);
    EXPECT_LT(c["rerank"]["mean_logprob"].get<double>(), 0.0);  // the same object as image captions'
  }
}

TEST(InferCliVideo, ScenesCuesStartAtTheRealCuts) {
  for (const std::string ext : {"mp4", "webm"}) {
    auto video = ext == "mp4" ? test::colour_video()
                              : test::colour_video("webm", "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 200k");
    const std::string out = test::temp_dir("cli-scenes");
    auto r = test::run(infer_video("--scenes --scene-frames 2 --out-dir " + shell_quote(out) + " " + shell_quote(video.path)));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto cues = read_json_file(out + "/" + fs::path(video.path).stem().string() + "_caption.json");
    expect_cues_tile(cues, video.duration_s);
    EXPECT_LE(cues.size(), 4u);
    // Merging may join scenes whose captions agree; every boundary left is a real cut.
    for (size_t i = 1; i < cues.size(); ++i) {
      const double b = cues[i]["start_s"].get<double>();
      double nearest = 1e9;
      for (double cut : video.cuts) nearest = std::min(nearest, std::abs(cut - b));
      EXPECT_LE(nearest, video.frame_s + 1e-6) << ext << ": cue starts at " << b;
    }
  }
}

TEST(InferCliVideo, FormatsFramesAndVideoCaption) {
  const std::string dir = test::temp_dir("cli-frames");
  const std::string video = dir + "/clip one.mkv";
  fs::copy_file(test::colour_video("mkv", "-c:v libx264 -bf 3").path, video);
  auto r = test::run(infer_video("--every 2 --formats srt --frames --video-caption " + shell_quote(video)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/clip one_caption.srt"));  // next to the video
  EXPECT_FALSE(fs::exists(dir + "/clip one_caption.vtt"));
  EXPECT_FALSE(fs::exists(dir + "/clip one_caption.json"));
  const std::string caption = read_file(dir + "/clip one_video_caption.txt");
  ASSERT_FALSE(caption.empty());
  EXPECT_NE(r.out.find("[video]  " + caption.substr(0, caption.size() - 1)), std::string::npos) << r.out;
  for (int i = 0; i < 3; ++i) {  // frames at 0, 2, 4 s
    char name[32];
    std::snprintf(name, sizeof name, "/frame_%04d.jpg", i);
    EXPECT_TRUE(fs::exists(dir + "/clip one_captioning_frames" + name)) << name;
  }
  EXPECT_FALSE(fs::exists(dir + "/clip one_captioning_frames/frame_0003.jpg"));
}

TEST(InferCliVideo, VariableFrameRateRotatedOffsetAndOddVideos) {
  auto src = test::colour_video();
  const std::vector<std::string> videos = {
      test::generated_video("cli-vfr.mp4", "-f lavfi -i testsrc=s=64x48:r=10:d=4 -vf select='not(between(n\\,10\\,19))' "
                                           "-fps_mode passthrough -c:v libx264 -bf 2"),
      test::generated_video("cli-rot.mp4", "-i " + shell_quote(src.path) + " -c copy -metadata:s:v rotate=270"),
      test::generated_video("cli-offset.mp4", "-i " + shell_quote(src.path) + " -c copy -output_ts_offset 10"),
      test::generated_video("cli-odd.mkv", "-f lavfi -i testsrc=s=63x47:r=25:d=2 -c:v libx264 -pix_fmt yuv444p")};
  const std::vector<double> durations = {4.0, 6.0, 6.0, 2.0};
  const std::string out = test::temp_dir("cli-misc");
  std::string args = "-N 4 --formats json --results " + shell_quote(out + "/results.jsonl") + " --out-dir " + shell_quote(out);
  for (const auto& v : videos) args += " " + shell_quote(v);
  auto r = test::run(infer_video(args));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (size_t i = 0; i < videos.size(); ++i) {
    auto cues = read_json_file(out + "/" + fs::path(videos[i]).stem().string() + "_caption.json");
    expect_cues_tile(cues, durations[i]);
  }
  // VFR: the frame for t = 1 s (in the hole) is the one at 2 s.
  auto lines = split_lines(read_file(out + "/results.jsonl"));
  ASSERT_EQ(lines.size(), videos.size());
  auto vfr = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(vfr["path"], videos[0]);
  std::set<double> frame_times;
  for (const auto& s : vfr["segments"]) frame_times.insert(s["frame_s"].get<double>());
  EXPECT_EQ(frame_times.count(1.0), 0u);
  EXPECT_EQ(vfr["frames"], 3);  // 0, 2 (for both t = 1 and t = 2) and 3 s
}

TEST(InferCliVideo, BadVideosGiveOneLineAndExitOne) {
  const std::string dir = test::temp_dir("cli-bad");
  { std::ofstream(dir + "/empty.mp4"); }
  { std::ofstream(dir + "/text.mp4") << "hello\n"; }
  const std::string mkv = read_file(test::colour_video("mkv", "-c:v libx264 -bf 3").path);
  write_file_atomic(dir + "/half.mkv", mkv.substr(0, mkv.size() / 2));
  // moov first (faststart): it opens, says 4 s, and its frames stop half way
  const std::string fast = read_file(test::generated_video(
      "cli-faststart.mp4", "-f lavfi -i testsrc=s=64x48:r=25:d=4 -c:v libx264 -movflags +faststart"));
  write_file_atomic(dir + "/half-fast.mp4", fast.substr(0, fast.size() / 2));
  const std::string audio = test::generated_video("cli-tone.wav", "-f lavfi -i sine=d=1");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {dir + "/missing.mp4", "no such file"}, {dir + "/empty.mp4", "empty file"},
      {dir + "/text.mp4", "not a video file"}, {dir + "/half.mkv", "truncated"}, {dir + "/half-fast.mp4", "truncated"},
      {audio, "audio only"}};
  for (const std::string seek : {"exact", "keyframe"})  // keyframe mode keeps every message
  for (const auto& [path, problem] : cases) {
    auto r = test::run(infer_video("-N 10 --seek " + seek + " " + shell_quote(path)));
    EXPECT_EQ(r.exit_code, 1) << path;
    EXPECT_NE(r.err.find(path + ": "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(problem), std::string::npos) << r.err;
    EXPECT_EQ(split_lines(r.err).size(), 1u) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_FALSE(fs::exists(fs::path(path).replace_extension("").string() + "_caption.srt")) << path;
  }
  // --scenes reads every frame: the truncation is found there too.
  auto r = test::run(infer_video("--scenes " + shell_quote(dir + "/half.mkv")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  r = test::run(infer_video("--scenes --seek keyframe " + shell_quote(dir + "/x.mp4")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--seek keyframe works with -N and --every"), std::string::npos) << r.err;
  r = test::run(infer_video("--seek nearest " + shell_quote(dir + "/x.mp4")));
  EXPECT_NE(r.err.find("--seek must be exact or keyframe"), std::string::npos) << r.err;
  r = test::run(infer_video("--scenes " + shell_quote(dir + "/half.mkv")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  // usage mistakes
  r = test::run(infer_video("-N 3 --every 2 " + shell_quote(dir + "/x.mp4")));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = test::run(infer_video("--formats srt,gif " + shell_quote(dir + "/x.mp4")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown format 'gif'"), std::string::npos) << r.err;
  r = test::run(infer_video("--caption-batch 0 " + shell_quote(dir + "/x.mp4")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--caption-batch must be >= 1, got 0"), std::string::npos) << r.err;
}

// Four short videos that caption quickly, plus one bad one, in a list file.
std::vector<std::string> batch_videos(const std::string& dir) {
  std::vector<std::string> paths;
  const char* colours[] = {"red", "green", "blue", "yellow"};
  for (int i = 0; i < 4; ++i)
    paths.push_back(test::generated_video(std::string("batch-") + colours[i] + ".mp4",
                                          std::string("-f lavfi -i color=c=") + colours[i] + ":s=64x48:r=10:d=1 -c:v libx264"));
  { std::ofstream(dir + "/broken.mp4") << "not a video"; }
  paths.insert(paths.begin() + 2, dir + "/broken.mp4");
  return paths;
}

std::map<std::string, int> result_counts(const std::string& results) {
  std::map<std::string, int> n;
  for (const auto& line : split_lines(read_file(results))) n[nlohmann::json::parse(line)["path"].get<std::string>()]++;
  return n;
}

TEST(InferCliVideo, BatchResumesAfterAKillWithoutDuplicates) {
  const std::string dir = test::temp_dir("cli-batch");
  const auto videos = batch_videos(dir);
  {
    std::ofstream list(dir + "/list.txt");
    for (const auto& v : videos) list << v << "\n";
  }
  const std::string results = dir + "/out/results.jsonl";
  const std::string cmd = infer_video("-N 2 --formats json --list " + shell_quote(dir + "/list.txt") + " --results " +
                                      shell_quote(results) + " --out-dir " + shell_quote(dir + "/out"));
  auto r = test::run("CLIPCAP_TEST_ABORT_AFTER_VIDEOS=2 " + cmd);
  EXPECT_EQ(r.exit_code, 86) << r.err;  // killed by the test hook after two results
  ASSERT_EQ(split_lines(read_file(results)).size(), 2u);
  { std::ofstream(results, std::ios::app) << "{\"path\": \"" << videos[2] << "\", \"segm"; }  // torn by the kill

  r = test::run(cmd);
  EXPECT_EQ(r.exit_code, 1) << r.err;  // broken.mp4 failed, the batch went on
  EXPECT_NE(r.err.find("broken.mp4: not a video file"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("torn last line"), std::string::npos) << r.err;
  auto counts = result_counts(results);
  EXPECT_EQ(counts.size(), videos.size());
  for (const auto& v : videos) EXPECT_EQ(counts[v], 1) << v;
  for (const auto& line : split_lines(read_file(results))) {
    auto j = nlohmann::json::parse(line);
    if (j["path"] == videos[2]) {
      EXPECT_TRUE(j.contains("error"));
    } else {
      EXPECT_EQ(j["segments"].size(), 1u) << line;  // one colour: the two cues merge
      EXPECT_EQ(j["duration_s"], 1.0);
    }
  }
  // A third run has nothing left to do.
  r = test::run(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(split_lines(read_file(results)).size(), videos.size());
}

TEST(InferCliVideo, ShardsFromFlagOrEnvironmentSplitACsvList) {
  const std::string dir = test::temp_dir("cli-shard");
  auto videos = batch_videos(dir);
  videos.erase(videos.begin() + 2);  // no broken one here
  {
    std::ofstream csv(dir + "/meta.csv");
    csv << "video_path,caption\n";
    for (const auto& v : videos) csv << fs::path(v).filename().string() << ",\"a, b\"\n";
  }
  const std::string root = fs::path(videos[0]).parent_path().string();
  std::set<std::string> seen;
  for (int i = 0; i < 2; ++i) {
    const std::string results = dir + "/r" + std::to_string(i) + ".jsonl";
    const std::string args = "-N 1 --formats json --list " + shell_quote(dir + "/meta.csv") + " --video-root " +
                             shell_quote(root) + " --results " + shell_quote(results) + " --out-dir " + shell_quote(dir);
    auto r = test::run(i == 0 ? infer_video("--shard 0/2 " + args) : "RANK=1 WORLD_SIZE=2 " + infer_video(args));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto counts = result_counts(results);
    EXPECT_EQ(counts.size(), 2u);
    for (const auto& [p, n] : counts) EXPECT_TRUE(seen.insert(p).second) << p << " in both shards";
  }
  EXPECT_EQ(seen, std::set<std::string>(videos.begin(), videos.end()));
}

}  // namespace
}  // namespace clipcap
