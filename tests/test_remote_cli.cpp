// clipcap-infer and clipcap-eval through the remote (OpenAI-compatible) backend, against a real
// server: clipcap-serve on loopback serving the embedded emoji model. Captions through the endpoint
// equal the local model's; the video modes send what they should (checked from the server's request
// log); a server that goes away mid-batch leaves failed videos recorded that a rerun fills in; bad
// endpoints stop with one line naming them.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "common/json_util.h"
#include "common/stopwatch.h"
#include "common/strings.h"
#include "tests/serve_test_support.h"
#include "tests/test_support.h"
#include "tests/test_video_support.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace clipcap::test;

namespace {

const std::string& model() {
  static const std::string m = source_path("models/emoji-tiny");
  return m;
}

std::string remote(const std::string& base_url, const std::string& extra = "") {
  return " --backend openai --endpoint " + base_url + " --api-model emoji-tiny " + extra + " ";
}

std::string testsrc_video(const std::string& name = "testsrc.mp4", const std::string& pattern = "testsrc") {
  return generated_video(name, "-f lavfi -i " + pattern + "=duration=4:size=160x120:rate=10 -c:v libx264 -pix_fmt yuv420p");
}

std::vector<std::string> fixture_images() {
  std::vector<std::string> out;
  for (const char* name : {"rgb_160x120.png", "palette_100x30.png", "tiny_rgb_20x13.png", "gray_37x53.png",
                           "la_29x71.png", "rgba_40x40.png"})
    out.push_back(fixture(std::string("images/") + name));
  return out;
}

std::string joined(const std::vector<std::string>& paths) {
  std::string s;
  for (const auto& p : paths) s += " " + shell_quote(p);
  return s;
}

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  for (const auto& line : split_lines(clipcap::read_file(path)))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

std::string stem_of(const std::string& out_dir, const std::string& video) {
  return out_dir + "/" + fs::path(video).stem().string();
}

}  // namespace

TEST(RemoteCli, ImageAndVideoCaptionsThroughTheEndpointEqualTheLocalModel) {
  ServeProcess server("--log-requests");
  const std::string images = joined(fixture_images());
  const RunResult local = run(tool("clipcap-infer") + " image -m " + model() + " --threads 1" + images);
  ASSERT_EQ(local.exit_code, 0) << local.err;
  // PNG is lossless: the server captions exactly the pixels the local model did.
  const RunResult through = run(tool("clipcap-infer") + " image" + remote(server.url("/v1"), "--image-format png") + images);
  ASSERT_EQ(through.exit_code, 0) << through.err;
  EXPECT_EQ(through.out, local.out);
  EXPECT_EQ(split_lines(local.out).size(), 6u);
  const RunResult jsonl = run(tool("clipcap-infer") + " image --jsonl" + remote(server.url("/v1")) + images);
  ASSERT_EQ(jsonl.exit_code, 0) << jsonl.err;
  for (const auto& line : split_lines(jsonl.out))  // each image's token usage, as the server counted it
    EXPECT_GT(json::parse(line)["usage"]["completion_tokens"].get<int>(), 0) << line;

  const std::string video = testsrc_video();
  const std::string a = temp_dir("remote-local"), b = temp_dir("remote-remote");
  ASSERT_EQ(run(tool("clipcap-infer") + " video -m " + model() + " --threads 1 -N 4 --out-dir " + a + " " + video).exit_code, 0);
  const RunResult v = run(tool("clipcap-infer") + " video" + remote(server.url("/v1"), "--image-format png") +
                          "-N 4 --out-dir " + b + " --results " + b + "/results.jsonl " + video);
  ASSERT_EQ(v.exit_code, 0) << v.err;
  for (const char* suffix : {"_caption.srt", "_caption.vtt", "_caption.json"})
    EXPECT_EQ(clipcap::read_file(stem_of(b, video) + suffix), clipcap::read_file(stem_of(a, video) + suffix)) << suffix;
  // Token usage per video, as the endpoint counted it; the run record names the endpoint.
  const json line = read_jsonl(b + "/results.jsonl").at(0);
  EXPECT_EQ(line["usage"]["requests"], 4);
  EXPECT_GT(line["usage"]["completion_tokens"].get<int>(), 0);
  const json record = clipcap::read_json(stem_of(b, video) + "_caption_run.json");
  EXPECT_EQ(record["mode"], "frames");
  EXPECT_EQ(record["backend"]["endpoint"], server.url("/v1/chat/completions"));
  EXPECT_EQ(record["requests"].size(), 4u);
  EXPECT_EQ(record["usage"], line["usage"]);
}

TEST(RemoteCli, GridModeSendsOneTallImagePerVideoAndWritesOneCue) {
  ServeProcess server("--log-requests");
  const std::string v1 = testsrc_video(), v2 = testsrc_video("smpte.mp4", "smptebars");
  const std::string out = temp_dir("remote-grid");
  const RunResult r = run(tool("clipcap-infer") + " video" + remote(server.url("/v1")) +
                          "-N 5 --mode grid --grid-width 96 --video-caption --prompt 'Frames: {frames}, {duration} s.' "
                          "--out-dir " + out + " " + v1 + " " + v2);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto logged = server.logged_requests();
  ASSERT_EQ(logged.size(), 2u);  // one request per video
  for (const json& l : logged) {
    EXPECT_EQ(l["status"], 200);
    ASSERT_EQ(l["request"]["images"].size(), 1u);
    EXPECT_EQ(l["request"]["images"][0], json::array({96, 5 * 72}));  // 5 tiles of 96 x 72 (160 x 120), stacked
    EXPECT_EQ(l["request"]["text"], "Frames: 5, 4.000 s.");
  }
  for (const std::string& video : {v1, v2}) {
    const std::string stem = stem_of(out, video);
    const json cues = clipcap::read_json(stem + "_caption.json");
    ASSERT_EQ(cues.size(), 1u);
    EXPECT_EQ(cues[0]["start_s"], 0.0);
    EXPECT_EQ(cues[0]["end_s"], 4.0);
    EXPECT_EQ(ffmpeg_subtitle_cues(stem + "_caption.srt"), 1);
    EXPECT_EQ(ffmpeg_subtitle_cues(stem + "_caption.vtt"), 1);
    EXPECT_EQ(clipcap::read_file(stem + "_video_caption.txt"), cues[0]["text"].get<std::string>() + "\n");
    const json record = clipcap::read_json(stem + "_caption_run.json");
    EXPECT_EQ(record["mode"], "grid");
    EXPECT_EQ(record["prompts"]["prompt"], "Frames: {frames}, {duration} s.");
    EXPECT_EQ(record["requests"][0]["frame_times"], json::array({0.0, 0.8, 1.6, 2.4, 3.2}));
    EXPECT_EQ(record["requests"][0]["answer"], cues[0]["text"]);
  }
}

TEST(RemoteCli, SlidingModeSendsAdjacentFramesWithThePreviousCaption) {
  ServeProcess server("--log-requests");
  const std::string video = testsrc_video();
  const std::string out = temp_dir("remote-sliding");
  const RunResult r = run(tool("clipcap-infer") + " video" + remote(server.url("/v1"), "--concurrency 2") +
                          "-N 4 --mode sliding --first-prompt 'First at {frame_time}.' "
                          "--prompt 'Was: {previous_caption} ({previous_time} -> {frame_time})' --out-dir " + out + " " + video);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json record = clipcap::read_json(stem_of(out, video) + "_caption_run.json");
  const auto& requests = record["requests"];
  ASSERT_EQ(requests.size(), 4u);
  const auto logged = server.logged_requests();
  ASSERT_EQ(logged.size(), 4u);
  // One after another: request k carries the answer to request k - 1, and what was logged was sent.
  EXPECT_EQ(requests[0]["prompt"], "First at 0.000.");
  EXPECT_EQ(logged[0]["request"]["images"].size(), 1u);
  for (size_t k = 1; k < 4; ++k) {
    const std::string want = "Was: " + requests[k - 1]["answer"].get<std::string>() + " (" +
                             std::to_string(k - 1) + ".000 -> " + std::to_string(k) + ".000)";
    EXPECT_EQ(requests[k]["prompt"], want);
    EXPECT_EQ(logged[k]["request"]["text"], want);
    EXPECT_EQ(logged[k]["request"]["images"].size(), 2u);
    EXPECT_EQ(requests[k]["frame_times"], json::array({double(k - 1), double(k)}));
  }
  // The cues hold the differential captions (neighbours with the same text merged), tiling the video.
  const json cues = clipcap::read_json(stem_of(out, video) + "_caption.json");
  EXPECT_EQ(cues[0]["text"], requests[0]["answer"]);
  EXPECT_EQ(cues.back()["end_s"], 4.0);
  EXPECT_EQ(ffmpeg_subtitle_cues(stem_of(out, video) + "_caption.srt"), static_cast<int>(cues.size()));
}

TEST(RemoteCli, ASummaryEndpointTurnsTheFrameCaptionsIntoTheVideoCaption) {
  ServeProcess server("");
  FakeEndpoint summary([](const httplib::Request&, httplib::Response& res, int) {
    res.set_content(FakeEndpoint::answer("A test pattern video.", 40, 6), "application/json");
  });
  const std::string video = testsrc_video();
  const std::string out = temp_dir("remote-summary");
  const RunResult r = run(tool("clipcap-infer") + " video" + remote(server.url("/v1")) + "-N 3 --summary-endpoint " +
                          summary.base_url() + " --summary-model llm --out-dir " + out + " --results " + out +
                          "/results.jsonl " + video);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(clipcap::read_file(stem_of(out, video) + "_video_caption.txt"), "A test pattern video.\n");
  const auto calls = summary.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].body["model"], "llm");
  const std::string prompt = calls[0].body["messages"][0]["content"][0]["text"];
  const json cues = clipcap::read_json(stem_of(out, video) + "_caption.json");
  for (const auto& c : cues) {
    const std::string line = "[" + clipcap::format_number(c["start_s"].get<double>(), "%.3f") + "-" +
                             clipcap::format_number(c["end_s"].get<double>(), "%.3f") + " s] " + c["text"].get<std::string>();
    EXPECT_NE(prompt.find(line), std::string::npos) << line << " not in " << prompt;
  }
  const json line = read_jsonl(out + "/results.jsonl").at(0);
  EXPECT_EQ(line["video_caption"], "A test pattern video.");
  EXPECT_EQ(line["usage"]["requests"], 4);  // 3 frames + the summary
  const json record = clipcap::read_json(stem_of(out, video) + "_caption_run.json");
  EXPECT_EQ(record["summary"]["prompt"], prompt);
  EXPECT_EQ(record["summary"]["model"], "llm");
}

TEST(RemoteCli, AServerThatGoesAwayMidBatchLeavesFailuresARerunFillsIn) {
  const std::string v1 = testsrc_video(), v2 = testsrc_video("smpte.mp4", "smptebars"),
                    v3 = testsrc_video("rgbtest.mp4", "rgbtestsrc");
  const std::string out = temp_dir("remote-resume");
  const std::string results = out + "/results.jsonl";
  const auto command = [&](const std::string& url) {
    return tool("clipcap-infer") + " video" + remote(url, "--image-format png --concurrency 1 --retries 1 --retry-delay 0.05") + "--video-workers 1 " +
           "-N 2 --out-dir " + out + " --results " + results + " " + v1 + " " + v2 + " " + v3;
  };
  {  // No server at all: every video recorded as failed (transient), nothing written for them.
    const int port = closed_port();
    const RunResult r = run(command("http://127.0.0.1:" + std::to_string(port) + "/v1"));
    EXPECT_EQ(r.exit_code, 1);
    const auto lines = read_jsonl(results);
    ASSERT_EQ(lines.size(), 3u);
    for (const json& l : lines) {
      EXPECT_NE(l["error"].get<std::string>().find("cannot connect"), std::string::npos) << l;
      EXPECT_EQ(l["transient"], true);
    }
    EXPECT_FALSE(fs::exists(stem_of(out, v1) + "_caption.srt"));
  }
  ServeProcess server("");
  // In front of the server, a proxy that is "down" (503) for calls 2-5: the second video's two
  // frames, each tried twice (one video decoded at a time, one request in flight: a fixed order).
  // The batch goes on; the rerun fills the failure in.
  httplib::Client upstream("127.0.0.1", server.port());
  std::atomic<bool> down_window{true};
  FakeEndpoint proxy([&](const httplib::Request& req, httplib::Response& res, int call) {
    if (down_window && call >= 2 && call <= 5) {
      res.status = 503;
      res.set_content(R"({"error": {"message": "restarting"}})", "application/json");
      return;
    }
    auto answer = upstream.Post(req.path.c_str(), req.body, "application/json");
    res.status = answer ? answer->status : 502;
    if (answer) res.set_content(answer->body, "application/json");
  });
  fs::remove(results);
  const RunResult first = run(command(proxy.base_url()));
  EXPECT_EQ(first.exit_code, 1) << first.err;
  auto lines = read_jsonl(results);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_FALSE(lines[0].contains("error")) << lines[0];
  EXPECT_NE(lines[1]["error"].get<std::string>().find(proxy.base_url() + "/chat/completions: HTTP 503: restarting (2 attempts)"),
            std::string::npos)
      << lines[1];
  EXPECT_EQ(lines[1]["transient"], true);
  EXPECT_FALSE(lines[2].contains("error")) << lines[2];
  EXPECT_EQ(proxy.calls().size(), 8u);

  const RunResult rerun = run(command(proxy.base_url()));  // the same command
  EXPECT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_EQ(proxy.calls().size(), 10u);  // only the failed video's two frames
  lines = read_jsonl(results);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[3]["path"], v2);
  EXPECT_FALSE(lines[3].contains("error"));
  // Its subtitles are the local model's.
  const std::string local = temp_dir("remote-resume-local");
  ASSERT_EQ(run(tool("clipcap-infer") + " video -m " + model() + " --threads 1 -N 2 --out-dir " + local + " " + v2).exit_code, 0);
  EXPECT_EQ(clipcap::read_file(stem_of(out, v2) + "_caption.srt"), clipcap::read_file(stem_of(local, v2) + "_caption.srt"));
}

TEST(RemoteCli, BadEndpointsStopWithOneLineNamingTheEndpoint) {
  const std::string image = fixture("images/rgb_160x120.png");
  const auto infer = [&](const std::string& url, const std::string& extra = "") {
    return run(tool("clipcap-infer") + " image" + remote(url, "--retries 0 " + extra) + image);
  };
  const auto expect_failure = [](const RunResult& r, std::initializer_list<std::string> parts) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    for (const auto& p : parts) EXPECT_NE(r.err.find(p), std::string::npos) << "'" << p << "' not in: " << r.err;
  };
  const std::string refused = "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1";
  expect_failure(infer(refused), {refused + "/chat/completions: cannot connect"});

  ServeProcess server("");
  expect_failure(infer(server.url("/nope")), {server.url("/nope/chat/completions"), "HTTP 404", "OpenAI-compatible"});
  {
    const std::string dir = temp_dir("remote-key");
    clipcap::write_file_atomic(dir + "/server.key", "right\n");
    clipcap::write_file_atomic(dir + "/client.key", "wrong\n");
    ServeProcess keyed("--api-key-file " + dir + "/server.key");
    expect_failure(infer(keyed.url("/v1")), {keyed.url("/v1/chat/completions"), "HTTP 401", "API key"});
    expect_failure(infer(keyed.url("/v1"), "--api-key-file " + dir + "/client.key"), {"HTTP 401"});
    clipcap::write_file_atomic(dir + "/client.key", "right\n");
    const RunResult ok = infer(keyed.url("/v1"), "--api-key-file " + dir + "/client.key");
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    // A video batch stops at once rather than recording every video as failed.
    const std::string out = temp_dir("remote-key-video");
    const RunResult v = run(tool("clipcap-infer") + " video" + remote(keyed.url("/v1")) + "-N 2 --out-dir " + out +
                            " --results " + out + "/r.jsonl " + testsrc_video() + " " + testsrc_video("smpte.mp4", "smptebars"));
    expect_failure(v, {"HTTP 401"});
    EXPECT_TRUE(!fs::exists(out + "/r.jsonl") || clipcap::read_file(out + "/r.jsonl").empty());
  }
  FakeEndpoint html([](const httplib::Request&, httplib::Response& res, int) { res.set_content("<html>proxy</html>", "text/html"); });
  expect_failure(infer(html.base_url()), {html.base_url() + "/chat/completions", "not JSON"});
  FakeEndpoint empty([](const httplib::Request&, httplib::Response& res, int) { res.set_content("{}", "application/json"); });
  expect_failure(infer(empty.base_url()), {empty.base_url() + "/chat/completions", "no choices"});
  std::atomic<bool> release{false};
  FakeEndpoint hung([&](const httplib::Request&, httplib::Response& res, int) {
    const auto t0 = clipcap::Clock::now();
    while (!release && clipcap::seconds_since(t0) < 30) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    res.set_content(FakeEndpoint::answer("late"), "application/json");
  });
  const auto t0 = clipcap::Clock::now();
  expect_failure(infer(hung.base_url(), "--timeout 1"), {hung.base_url() + "/chat/completions", "no answer within the timeout of 1 s"});
  EXPECT_LT(clipcap::seconds_since(t0), 20.0);  // the timeout, not the server's 30 s
  release = true;
  // Flags that cannot describe a remote run: before any request.
  expect_failure(run(tool("clipcap-infer") + " image --backend openai --api-model x " + image), {"--endpoint"});
  expect_failure(run(tool("clipcap-infer") + " image" + remote(server.url("/v1"), "--strategy beam --beam-size 3") + image),
                 {"--strategy beam"});
  expect_failure(run(tool("clipcap-infer") + " image -m " + model() + " --endpoint " + server.url("/v1") + " " + image),
                 {"--endpoint is for --backend openai"});
  expect_failure(run(tool("clipcap-infer") + " video" + remote(server.url("/v1")) + "--mode sliding --prompt '{oops}' " +
                     testsrc_video()),
                 {"--prompt (--mode sliding): unknown field {oops}", "{previous_caption}"});
  expect_failure(run(tool("clipcap-infer") + " video" + remote(server.url("/v1")) + "--video-caption " + testsrc_video()),
                 {"--video-caption with a remote backend", "--summary-endpoint"});
  expect_failure(run(tool("clipcap-infer") + " video" + remote(server.url("/v1")) + "--mode mosaic " + testsrc_video()),
                 {"--mode: unknown mode 'mosaic'"});
  expect_failure(run(tool("clipcap-infer") + " video" + remote(server.url("/v1")) + "--mode grid --grid-columns 0 " +
                     testsrc_video()),
                 {"--grid-columns must be at least 1"});
  expect_failure(run(tool("clipcap-infer") + " image" + remote(server.url("/v1"), "--concurrency 0") + image),
                 {"--concurrency must be between 1 and 256"});
  expect_failure(run(tool("clipcap-infer") + " image" + remote(server.url("/v1"), "--api-key-file /nonexistent/key") + image),
                 {"/nonexistent/key: cannot read the API key file"});
}

TEST(RemoteCli, EvalThroughTheEndpointMatchesTheLocalModelAndComparesBesideIt) {
  ServeProcess server("");
  const std::string dir = temp_dir("remote-eval");
  fs::create_directories(dir + "/images");
  for (const auto& p : fixture_images()) fs::copy_file(p, dir + "/images/" + fs::path(p).filename().string());
  clipcap::write_file_atomic(dir + "/captions.jsonl",
                             "{\"image\": \"rgb_160x120.png\", \"caption\": [\"a red square\", \"colours\"], \"split\": \"test\"}\n"
                             "{\"image\": \"palette_100x30.png\", \"caption\": \"a striped banner\", \"split\": \"test\"}\n"
                             "{\"image\": \"tiny_rgb_20x13.png\", \"caption\": \"a tiny icon\", \"split\": \"test\"}\n"
                             "{\"image\": \"gray_37x53.png\", \"caption\": \"a gray picture\", \"split\": \"test\"}\n");
  const RunResult built = run(tool("clipcap-data") + " build --format jsonl --split-column split --captions " + dir +
                              "/captions.jsonl --images " + dir + "/images --clip " + source_path("models/emoji-clip") +
                              " --out " + dir + "/data --threads 1 --workers 1");
  ASSERT_EQ(built.exit_code, 0) << built.err;
  const std::string common = " --data " + dir + "/data --threads 1 --report-images 2 ";
  const RunResult local = run(tool("clipcap-eval") + " -m " + model() + " --embeddings model --out " + dir + "/local" + common);
  ASSERT_EQ(local.exit_code, 0) << local.err;
  const RunResult served = run(tool("clipcap-eval") + remote(server.url("/v1"), "--image-format png") + "--out " + dir +
                               "/served" + common);
  ASSERT_EQ(served.exit_code, 0) << served.err;
  const json lm = clipcap::read_json(dir + "/local/metrics.json"), sm = clipcap::read_json(dir + "/served/metrics.json");
  EXPECT_EQ(sm["metrics"], lm["metrics"]);
  EXPECT_EQ(sm["model"]["backend"], "openai");
  EXPECT_EQ(sm["usage"]["requests"], 4);
  EXPECT_EQ(clipcap::read_file(dir + "/served/predictions.jsonl"), clipcap::read_file(dir + "/local/predictions.jsonl"));
  const RunResult compared = run(tool("clipcap-eval") + " compare " + dir + "/local " + dir + "/served");
  ASSERT_EQ(compared.exit_code, 0) << compared.err;
  EXPECT_NE(compared.out.find("local: local " + model()), std::string::npos) << compared.out;
  EXPECT_NE(compared.out.find("served: openai emoji-tiny at " + server.url("/v1/chat/completions")), std::string::npos)
      << compared.out;
}
