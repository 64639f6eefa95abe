// VideoCaptioner with a tiny model: a one-frame cue has exactly the caption of that frame as an
// image; batches keep input order and survive bad videos; repeated frames are embedded once.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "backend/local_backend.h"
#include "infer/video_captioner.h"
#include "infer/video_decoder.h"
#include "tests/test_support.h"
#include "tests/test_video_support.h"

namespace fs = std::filesystem;

namespace clipcap {
namespace {

// The tiny model as the caption backend: several CLIP batches per video, and several generation
// batches not aligned with the CLIP ones.
LocalBackend& tiny_backend() {
  static LocalBackend backend(Captioner::load(test::tiny_model_dir()), test::tiny_model_dir(), {4, 3});
  return backend;
}
Captioner& tiny_captioner() { return tiny_backend().captioner(); }

VideoCaptionOptions small_options(const std::string& out_dir) {
  VideoCaptionOptions o;
  o.out_dir = out_dir;
  o.decoding = tiny_captioner().config().decoding;
  o.decoding.max_len = 6;
  return o;
}

TEST(VideoCaptioner, OneFrameCueHasTheCaptionOfThatFrameAsAnImage) {
  const std::string path = test::generated_video("captioner-testsrc.mp4", "-f lavfi -i testsrc=s=96x64:r=25:d=4 -c:v libx264 -bf 2");
  auto opts = small_options(test::temp_dir("captioner"));
  opts.num_frames = 5;
  VideoCaptioner vc(tiny_backend(), opts);
  VideoResult r = vc.caption(path);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.frames, 5);
  EXPECT_NEAR(r.duration_s, 4.0, 1e-9);

  // The same frames decoded and captioned as images, independently of the pipeline.
  VideoDecoder dec(path);
  std::vector<Image> frames;
  std::vector<double> times;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(dec.advance_to(i * 4.0 / 5));
    frames.push_back(dec.rgb());
    times.push_back(dec.pts_s());
  }
  auto want = tiny_captioner().caption_images(frames, opts.decoding);
  // Unmerge: each uniform segment i is covered by the cue containing its start.
  for (int i = 0; i < 5; ++i) {
    const double t = i * 4.0 / 5;
    const Cue* cue = nullptr;
    for (const auto& c : r.cues)
      if (c.start_s <= t + 1e-9 && t < c.end_s) cue = &c;
    ASSERT_NE(cue, nullptr) << t;
    EXPECT_EQ(cue->text, want[i]) << "segment " << i;
  }
  EXPECT_NEAR(r.cues[0].frame_s, times[0], 1e-9);
  for (const auto& out : r.outputs) EXPECT_TRUE(fs::exists(out)) << out;
  EXPECT_EQ(r.outputs.size(), 3u);
}

TEST(VideoCaptioner, BatchKeepsOrderAndGoesOnAfterBadVideos) {
  const std::string dir = test::temp_dir("captioner-batch");
  auto good = test::colour_video();
  std::vector<std::string> paths = {good.path, dir + "/missing.mp4", test::fixture("images/rgb_160x120.png"),
                                    test::colour_video("mkv", "-c:v libx264 -bf 3").path};
  auto opts = small_options(dir);
  opts.num_frames = 3;
  opts.video_caption = true;
  VideoCaptioner vc(tiny_backend(), opts);
  std::vector<VideoResult> got;
  vc.caption_all(paths, [&](const VideoResult& r) { got.push_back(r); });
  ASSERT_EQ(got.size(), paths.size());
  for (size_t i = 0; i < paths.size(); ++i) EXPECT_EQ(got[i].path, paths[i]);
  EXPECT_TRUE(got[0].ok) << got[0].error;
  EXPECT_FALSE(got[1].ok);
  EXPECT_NE(got[1].error.find("missing.mp4: no such file"), std::string::npos) << got[1].error;
  EXPECT_FALSE(got[2].ok);
  EXPECT_NE(got[2].error.find("still image"), std::string::npos) << got[2].error;
  ASSERT_TRUE(got[3].ok) << got[3].error;
  ASSERT_EQ(got[3].outputs.size(), 4u);  // srt, vtt, json and the video caption
  EXPECT_EQ(read_file(got[3].outputs[3]), got[3].video_caption + "\n");
  EXPECT_EQ(got[3].cues.front().start_s, 0.0);
  EXPECT_NEAR(got[3].cues.back().end_s, 6.0, 1e-3);
  auto j = got[1].to_json();
  EXPECT_EQ(j["path"], paths[1]);
  EXPECT_TRUE(j.contains("error"));
  EXPECT_FALSE(j.contains("segments"));
}

// Frames >= 3 s apart are decoded by two readers (every other one on a second decoder): the result
// must be the one reader's, cue for cue, and a damaged file must still be an error naming it.
TEST(VideoCaptioner, TwoReadersGiveTheOneReadersResult) {
  const std::string path = test::generated_video(
      "captioner-long.mp4", "-f lavfi -i testsrc=s=96x64:r=10:d=24 -c:v libx264 -g 20 -bf 2 -movflags +faststart");
  auto caption = [&](int readers, const std::string& video) {
    auto opts = small_options(test::temp_dir("captioner-readers"));
    opts.num_frames = 6;  // 4 s apart
    opts.planned_readers = readers;
    VideoCaptioner vc(tiny_backend(), opts);
    VideoResult r = vc.caption(video);
    return std::make_pair(r, vc.timings().frames_decoded);
  };
  const auto [one, decoded_one] = caption(1, path);
  const auto [two, decoded_two] = caption(2, path);
  ASSERT_TRUE(one.ok) << one.error;
  ASSERT_TRUE(two.ok) << two.error;
  EXPECT_EQ(two.frames, 6);
  ASSERT_EQ(one.cues.size(), two.cues.size());
  for (size_t i = 0; i < one.cues.size(); ++i) {
    EXPECT_EQ(two.cues[i].text, one.cues[i].text) << i;
    EXPECT_EQ(two.cues[i].start_s, one.cues[i].start_s) << i;
    EXPECT_EQ(two.cues[i].end_s, one.cues[i].end_s) << i;
    EXPECT_EQ(two.cues[i].frame_s, one.cues[i].frame_s) << i;
  }
  // Both readers' frames are counted, and splitting the times does not add decoding work.
  EXPECT_GT(decoded_two, 0);
  EXPECT_LE(decoded_two, decoded_one + 2);

  const std::string half = test::temp_dir("captioner-readers") + "/half.mp4";
  const std::string bytes = read_file(path);
  write_file_atomic(half, bytes.substr(0, bytes.size() * 6 / 10));
  const auto [bad, ignored] = caption(2, half);
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.error.find(half + ": "), std::string::npos) << bad.error;
  EXPECT_NE(bad.error.find("truncated"), std::string::npos) << bad.error;
  EXPECT_EQ(caption(1, half).first.error, bad.error);  // whichever reader met the end
}

// Keyframe mode: one frame decoded per sample, each the keyframe nearest to its target time, and
// each cue's caption that frame's caption as an image; cue bounds stay the target times.
TEST(VideoCaptioner, KeyframeModeCaptionsTheKeyframesItReports) {
  const std::string path = test::generated_video(
      "captioner-gop10.mp4", "-f lavfi -i testsrc=s=96x64:r=25:d=6 -c:v libx264 -g 10 -keyint_min 10 -sc_threshold 0 -bf 2");
  for (const std::string video : {path, test::generated_video("captioner-gop10.webm",
                                                              "-f lavfi -i testsrc=s=96x64:r=25:d=6 -c:v libvpx-vp9 -g 10")}) {
    auto opts = small_options(test::temp_dir("captioner-keyframes"));
    opts.num_frames = 5;
    opts.seek = Seek::kKeyframe;
    opts.planned_readers = 1;
    VideoCaptioner vc(tiny_backend(), opts);
    const VideoResult r = vc.caption(video);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_LE(vc.timings().frames_decoded, 5) << video;  // one frame per sample, not the GOP before it
    std::vector<Image> frames;
    for (const Cue& c : r.cues) {
      // A keyframe every 0.4 s: the frame reported is one, and near the cue's start (its target).
      const double k = c.frame_s / 0.4;
      EXPECT_NEAR(k, std::round(k), 1e-6) << video << " frame at " << c.frame_s;
      EXPECT_LE(std::abs(c.frame_s - c.start_s), 0.4 + 1e-6) << video;
      VideoDecoder dec(video);
      ASSERT_TRUE(dec.advance_to(c.frame_s));
      EXPECT_NEAR(dec.pts_s(), c.frame_s, 1e-9);
      frames.push_back(dec.rgb());
    }
    const auto want = tiny_captioner().caption_images(frames, opts.decoding);
    for (size_t i = 0; i < r.cues.size(); ++i) EXPECT_EQ(r.cues[i].text, want[i]) << video << " cue " << i;
    EXPECT_EQ(r.cues.front().start_s, 0.0);
    EXPECT_NEAR(r.cues.back().end_s, 6.0, 1e-3);
  }
}

TEST(VideoCaptioner, MidSamplePointTakesEachSegmentsMiddleFrame) {
  const std::string path = test::generated_video("captioner-testsrc.mp4", "-f lavfi -i testsrc=s=96x64:r=25:d=4 -c:v libx264 -bf 2");
  auto opts = small_options(test::temp_dir("captioner-mid"));
  opts.num_frames = 4;
  opts.sample_point = SamplePoint::kMid;
  VideoCaptioner vc(tiny_backend(), opts);
  const VideoResult r = vc.caption(path);
  ASSERT_TRUE(r.ok) << r.error;
  for (const Cue& c : r.cues) {  // segments of 1 s: the first frame (25 fps) at or after the middle
    EXPECT_GE(c.frame_s, c.start_s + 0.5 - 1e-6);
    EXPECT_LT(c.frame_s, c.start_s + 0.5 + 0.04);
  }
}

// Several videos decoded at once: the same results, in input order, bad videos included.
TEST(VideoCaptioner, VideoWorkersGiveTheOneAtATimeResults) {
  const std::string dir = test::temp_dir("captioner-workers");
  const std::vector<std::string> paths = {
      test::generated_video("captioner-testsrc.mp4", "-f lavfi -i testsrc=s=96x64:r=25:d=4 -c:v libx264 -bf 2"),
      dir + "/missing.mp4", test::colour_video().path,
      test::generated_video("captioner-gop10.webm", "-f lavfi -i testsrc=s=96x64:r=25:d=6 -c:v libvpx-vp9 -g 10"),
      test::generated_video("captioner-short.mp4", "-f lavfi -i testsrc=s=64x48:r=5:d=1 -c:v libx264")};
  auto run = [&](int workers) {
    auto opts = small_options(dir + "/" + std::to_string(workers));
    opts.num_frames = 3;
    opts.video_workers = workers;
    VideoCaptioner vc(tiny_backend(), opts);
    std::vector<nlohmann::json> got;
    vc.caption_all(paths, [&](const VideoResult& r) {
      nlohmann::json j = r.to_json();
      j.erase("outputs");
      got.push_back(j);
    });
    return got;
  };
  const auto one = run(1), three = run(3);
  ASSERT_EQ(one.size(), paths.size());
  EXPECT_EQ(three, one);
  EXPECT_TRUE(one[1].contains("error"));
  EXPECT_EQ(video_workers_for(VideoCaptionOptions{}, 1), 1);
}

// The tiny model, counting the requests it captions.
class CountingBackend : public CaptionBackend {
 public:
  nlohmann::json describe() const override { return tiny_backend().describe(); }
  int image_batch() const override { return tiny_backend().image_batch(); }
  int caption_batch() const override { return tiny_backend().caption_batch(); }
  ImagePayload prepare(const Image& image) const override { return tiny_backend().prepare(image); }
  std::vector<ImagePayload> encode(std::vector<ImagePayload> prepared) override {
    return tiny_backend().encode(std::move(prepared));
  }
  std::vector<Caption> caption(const std::vector<std::vector<const ImagePayload*>>& requests, const DecodeOptions& opts,
                               CaptionObserver* observer, const std::vector<uint64_t>& seeds) override {
    captioned += static_cast<int>(requests.size());
    return tiny_backend().caption(requests, opts, observer, seeds);
  }
  int captioned = 0;
};

// 23 segments on a 5-frame clip: each frame is embedded once and captioned once, and every
// segment showing a frame has that frame's caption; with sampling too (each request is seeded alike).
TEST(VideoCaptioner, MoreSamplesThanFramesEmbedsAndCaptionsEachFrameOnce) {
  const std::string path = test::generated_video("captioner-short.mp4", "-f lavfi -i testsrc=s=64x48:r=5:d=1 -c:v libx264");
  for (const std::string strategy : {"greedy", "sample"}) {
    auto opts = small_options(test::temp_dir("captioner-short"));
    opts.num_frames = 23;
    opts.decoding.strategy = strategy;
    opts.decoding.seed = 7;
    CountingBackend counting;
    VideoCaptioner vc(counting, opts);
    VideoResult r = vc.caption(path);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.frames, 5);
    EXPECT_EQ(counting.captioned, 5) << strategy;
    EXPECT_EQ(r.cues.front().start_s, 0.0);
    EXPECT_NEAR(r.cues.back().end_s, 1.0, 1e-9);
    std::vector<Image> frames;
    VideoDecoder dec(path);
    while (dec.next()) frames.push_back(dec.rgb());
    ASSERT_EQ(frames.size(), 5u);
    const auto want = tiny_captioner().caption_images(frames, opts.decoding);
    for (const Cue& c : r.cues) EXPECT_EQ(c.text, want[static_cast<size_t>(std::lround(c.frame_s * 5))]) << strategy << " " << c.frame_s;
  }
}

TEST(VideoCaptioner, OptionsAreCheckedUpFront) {
  VideoCaptionOptions o;
  o.num_frames = 0;
  test::expect_error([&] { o.validate(); }, {"-N", ">= 1"});
  o = VideoCaptionOptions{};
  o.scene_frames = 0;
  test::expect_error([&] { o.validate(); }, {"--scene-frames"});
  o = VideoCaptionOptions{};
  o.scenes.threshold = -1;
  test::expect_error([&] { o.validate(); }, {"--scene-threshold"});
  o = VideoCaptionOptions{};
  o.formats.clear();
  test::expect_error([&] { o.validate(); }, {"--formats", "nothing to write"});
  o = VideoCaptionOptions{};
  o.formats = {"srt", "ass"};
  test::expect_error([&] { o.validate(); }, {"--formats", "unknown format 'ass'", "srt, vtt, json"});
  o = VideoCaptionOptions{};
  o.decoder.threads = -1;
  test::expect_error([&] { o.validate(); }, {"--decode-threads", ">= 0"});
  LocalBackendOptions b;
  b.caption_batch = 0;
  test::expect_error([&] { b.validate(); }, {"--caption-batch", ">= 1"});
  b = {};
  b.image_batch = -2;
  test::expect_error([&] { b.validate(); }, {"--batch-size", ">= 1"});
}

}  // namespace
}  // namespace clipcap
