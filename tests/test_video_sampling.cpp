// Which frames get captioned: uniform and every-S segments tile the video with no gaps; scene
// detection finds generated cuts within one frame; scene segments pick frames inside each scene.
#include <gtest/gtest.h>

#include "infer/frame_sampler.h"
#include "infer/scene_detector.h"
#include "infer/video_decoder.h"
#include "tests/test_support.h"
#include "tests/test_video_support.h"

namespace clipcap {
namespace {

void expect_tiling(const std::vector<FrameSegment>& segs, double duration) {
  ASSERT_FALSE(segs.empty());
  EXPECT_EQ(segs.front().start_s, 0.0);
  EXPECT_EQ(segs.back().end_s, duration);
  for (size_t i = 0; i < segs.size(); ++i) {
    EXPECT_LT(segs[i].start_s, segs[i].end_s) << i;
    if (i + 1 < segs.size()) {
      EXPECT_EQ(segs[i].end_s, segs[i + 1].start_s) << "gap or overlap after " << i;
    }
    ASSERT_FALSE(segs[i].frame_times.empty());
    for (double t : segs[i].frame_times) {
      EXPECT_GE(t, segs[i].start_s);
      EXPECT_LT(t, segs[i].end_s);
    }
  }
}

TEST(FrameSampler, UniformIsUpstreamsFrameTimesWithoutGaps) {
  auto segs = uniform_segments(7.3, 10);
  ASSERT_EQ(segs.size(), 10u);
  expect_tiling(segs, 7.3);
  for (int i = 0; i < 10; ++i) {
    EXPECT_DOUBLE_EQ(segs[i].frame_times[0], i * 7.3 / 10);
    EXPECT_DOUBLE_EQ(segs[i].start_s, i * 7.3 / 10);
  }
  expect_tiling(uniform_segments(0.04, 1), 0.04);
  test::expect_error([] { uniform_segments(5, 0); }, {"-N", ">= 1"});
}

TEST(FrameSampler, EverySecondsEndsWithAShorterSegment) {
  auto segs = every_segments(5.0, 2.0);
  ASSERT_EQ(segs.size(), 3u);
  expect_tiling(segs, 5.0);
  EXPECT_EQ(segs[2].start_s, 4.0);
  EXPECT_EQ(every_segments(4.0, 2.0).size(), 2u);  // no empty [4, 4) segment
  test::expect_error([] { every_segments(5.0, 0); }, {"--every", "> 0"});
}

TEST(EvenSampler, KeepsEverythingUntilFullThenEveryOtherAndPicksNearTheMiddle) {
  EvenSampler<int> small(8);
  for (int i = 0; i < 5; ++i) small.add(i);
  auto one = small.pick(1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(*one[0], 2);  // exact while nothing was dropped
  auto three = small.pick(3);
  ASSERT_EQ(three.size(), 3u);
  EXPECT_EQ(*three[0], 0);
  EXPECT_EQ(*three[1], 2);
  EXPECT_EQ(*three[2], 4);
  EXPECT_EQ(small.pick(9).size(), 5u);  // never more than seen, never twice the same

  for (int n : {9, 100, 1000, 12345}) {
    EvenSampler<int> s(16);
    for (int i = 0; i < n; ++i) s.add(i);
    EXPECT_LE(s.stride(), static_cast<size_t>(2 * n / 16 + 1)) << n;
    auto picked = s.pick(3);
    ASSERT_EQ(picked.size(), 3u) << n;
    for (int j = 0; j < 3; ++j) {
      const int want = static_cast<int>((j + 0.5) * n / 3);
      EXPECT_LE(std::abs(*picked[j] - want), static_cast<int>(s.stride() / 2)) << n << " pick " << j;
    }
  }
}

TEST(SceneDetector, FindsGeneratedCutsWithinOneFrame) {
  for (const auto& [ext, codec] : std::vector<std::pair<std::string, std::string>>{
           {"mp4", "-c:v libx264 -bf 2"}, {"webm", "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 200k"}}) {
    auto video = test::colour_video(ext, codec);
    VideoDecoder v(video.path);
    SceneDetectOptions opts;
    SceneDetector det(opts);
    auto [w, h] = analysis_size(v.info().width, v.info().height, opts.analysis_long_side);
    while (v.next()) det.add_frame(v.rgb_scaled(w, h), v.pts_s());
    const auto& starts = det.scene_starts();
    ASSERT_EQ(starts.size(), video.cuts.size() + 1) << ext;
    for (size_t i = 0; i < video.cuts.size(); ++i)
      EXPECT_NEAR(det.frame_times()[starts[i + 1]], video.cuts[i], video.frame_s + 1e-6) << ext << " cut " << i;

  }
}

TEST(SceneDetector, MotionIsNotACutAndMinSceneLenHolds) {
  // testsrc scrolls and counts; no cut in it. Then alternating colours every 0.2 s.
  const std::string moving = test::generated_video("moving.mp4", "-f lavfi -i testsrc=s=96x64:r=25:d=3 -c:v libx264");
  VideoDecoder v(moving);
  SceneDetector det;
  auto [w, h] = analysis_size(v.info().width, v.info().height, 160);
  while (v.next()) det.add_frame(v.rgb_scaled(w, h), v.pts_s());
  EXPECT_EQ(det.scene_starts().size(), 1u);

  Image red{8, 8, std::vector<uint8_t>(8 * 8 * 3, 0)}, blue = red;
  for (size_t i = 0; i < red.pixels.size(); i += 3) red.pixels[i] = 255, blue.pixels[i + 2] = 255;
  SceneDetectOptions opts;
  opts.min_scene_len_s = 0.5;
  SceneDetector flicker(opts);
  for (int i = 0; i < 25; ++i) flicker.add_frame((i / 5) % 2 ? blue : red, i * 0.04 * 1.0);
  // colour changes at 0.2, 0.4, 0.6, 0.8 s; with 0.5 s minimum only the one at 0.6 s is a cut
  ASSERT_EQ(flicker.scene_starts().size(), 2u);
  EXPECT_NEAR(flicker.frame_times()[flicker.scene_starts()[1]], 0.6, 1e-9);
}

}  // namespace
}  // namespace clipcap
