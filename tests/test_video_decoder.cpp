// VideoDecoder on real files made by the ffmpeg CLI: presentation times (B-frames, VP9, mkv,
// variable frame rate, non-zero start time), duration, rotation, odd sizes, seeking, bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "common/atomic_file.h"
#include "infer/video_decoder.h"
#include "tests/test_support.h"
#include "tests/test_video_support.h"

namespace clipcap {
namespace {

using test::generated_video;
using test::shell_quote;

std::vector<double> all_pts(const std::string& path) {
  VideoDecoder v(path);
  std::vector<double> out;
  while (v.next()) out.push_back(v.pts_s());
  return out;
}

void expect_regular_times(const std::vector<double>& pts, size_t n, double fps) {
  ASSERT_EQ(pts.size(), n);
  for (size_t i = 0; i < n; ++i) EXPECT_NEAR(pts[i], i / fps, 1e-6) << "frame " << i;
}

// The mean colour of a frame region, to tell red from blue.
std::array<double, 3> mean_rgb(const Image& img, int64_t x0, int64_t y0, int64_t x1, int64_t y1) {
  std::array<double, 3> sum{0, 0, 0};
  for (int64_t y = y0; y < y1; ++y)
    for (int64_t x = x0; x < x1; ++x)
      for (int c = 0; c < 3; ++c) sum[c] += img.row(y)[3 * x + c];
  const double n = static_cast<double>((x1 - x0) * (y1 - y0));
  return {sum[0] / n, sum[1] / n, sum[2] / n};
}

TEST(VideoDecoder, H264WithBFramesGivesPresentationTimesFromZero) {
  auto c = test::colour_video();
  VideoDecoder v(c.path);
  EXPECT_EQ(v.info().codec, "h264");
  EXPECT_EQ(v.info().width, 64);
  EXPECT_EQ(v.info().height, 48);
  EXPECT_NEAR(v.info().duration_s, c.duration_s, 1e-6);
  EXPECT_NEAR(v.info().frame_rate, 25.0, 1e-9);
  expect_regular_times(all_pts(c.path), 150, 25.0);
}

TEST(VideoDecoder, Vp9WebmAndMatroskaTimesAndDurations) {
  auto webm = test::colour_video("webm", "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 200k");
  VideoDecoder w(webm.path);
  EXPECT_EQ(w.info().codec, "vp9");
  EXPECT_NEAR(w.info().duration_s, webm.duration_s, 1e-3);  // no stream duration: read from the tail
  expect_regular_times(all_pts(webm.path), 150, 25.0);

  auto mkv = test::colour_video("mkv", "-c:v libx264 -bf 3");
  VideoDecoder m(mkv.path);
  EXPECT_NEAR(m.info().duration_s, mkv.duration_s, 1e-3);
  expect_regular_times(all_pts(mkv.path), 150, 25.0);
}

TEST(VideoDecoder, NonZeroStartTimeIsSubtracted) {
  auto src = test::colour_video();
  for (const std::string ext : {"mp4", "webm"}) {
    const std::string codec = ext == "mp4" ? "-c copy" : "-c:v libvpx-vp9 -deadline realtime -cpu-used 8";
    const std::string path =
        generated_video("offset." + ext, "-i " + shell_quote(src.path) + " " + codec + " -output_ts_offset 10");
    VideoDecoder v(path);
    EXPECT_NEAR(v.info().duration_s, 6.0, 1e-3) << ext;
    auto pts = all_pts(path);
    ASSERT_EQ(pts.size(), 150u) << ext;
    EXPECT_NEAR(pts.front(), 0.0, 1e-6) << ext;
    EXPECT_NEAR(pts.back(), 5.96, 1e-6) << ext;
  }
}

TEST(VideoDecoder, VariableFrameRateKeepsRealTimes) {
  // 10 fps with frames 10..19 dropped: a one-second hole between 0.9 s and 2.0 s.
  const std::string path = generated_video(
      "vfr.mp4", "-f lavfi -i testsrc=s=64x48:r=10:d=4 -vf select='not(between(n\\,10\\,19))' -fps_mode passthrough "
                 "-c:v libx264 -bf 2");
  auto pts = all_pts(path);
  ASSERT_EQ(pts.size(), 30u);
  EXPECT_NEAR(pts[9], 0.9, 1e-6);
  EXPECT_NEAR(pts[10], 2.0, 1e-6);
  EXPECT_NEAR(pts.back(), 3.9, 1e-6);
  VideoDecoder v(path);
  EXPECT_NEAR(v.info().duration_s, 4.0, 1e-6);
  ASSERT_TRUE(v.advance_to(1.0));  // inside the hole: the next frame that exists
  EXPECT_NEAR(v.pts_s(), 2.0, 1e-6);
}

TEST(VideoDecoder, RotatedVideoComesOutUprightLikeFfmpegShowsIt) {
  // Left half red, right half blue, tagged to be shown turned by 90 degrees.
  const std::string plain = generated_video(
      "halves.mp4", "-f lavfi -i color=c=red:s=32x48:r=25:d=1 -f lavfi -i color=c=blue:s=32x48:r=25:d=1 "
                    "-filter_complex [0][1]hstack -c:v libx264 -pix_fmt yuv444p");
  const std::string rotated = generated_video("rotated.mp4", "-i " + shell_quote(plain) + " -c copy -metadata:s:v rotate=90");
  VideoDecoder v(rotated);
  EXPECT_EQ(v.info().rotation % 180, 90);
  EXPECT_EQ(v.info().width, 48);
  EXPECT_EQ(v.info().height, 64);
  ASSERT_TRUE(v.next());
  Image ours = v.rgb();
  ASSERT_EQ(ours.width, 48);
  ASSERT_EQ(ours.height, 64);

  // ffmpeg's autorotated first frame, as raw RGB, is the truth.
  const std::string raw = test::temp_dir("rotate") + "/frame.rgb";
  auto r = test::run("ffmpeg -nostdin -v error -y -i " + shell_quote(rotated) + " -frames:v 1 -f rawvideo -pix_fmt rgb24 " +
                     shell_quote(raw));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string bytes = read_file(raw);
  ASSERT_EQ(bytes.size(), 48u * 64 * 3);
  Image theirs{48, 64, std::vector<uint8_t>(bytes.begin(), bytes.end())};
  for (auto [y0, y1] : {std::pair<int64_t, int64_t>{2, 28}, {36, 62}}) {
    auto a = mean_rgb(ours, 4, y0, 44, y1), b = mean_rgb(theirs, 4, y0, 44, y1);
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(a[c], b[c], 12.0) << "rows " << y0 << "-" << y1 << " channel " << c;
  }
  // and the two halves really differ (the check above is not vacuous)
  EXPECT_GT(std::abs(mean_rgb(ours, 4, 2, 44, 28)[0] - mean_rgb(ours, 4, 36, 44, 62)[0]), 100.0);
}

TEST(VideoDecoder, OddFrameSizes) {
  const std::string path = generated_video("odd.mp4", "-f lavfi -i testsrc=s=63x47:r=25:d=1 -c:v libx264 -pix_fmt yuv444p");
  VideoDecoder v(path);
  EXPECT_EQ(v.info().width, 63);
  EXPECT_EQ(v.info().height, 47);
  ASSERT_TRUE(v.next());
  Image img = v.rgb();
  EXPECT_EQ(img.width, 63);
  EXPECT_EQ(img.height, 47);
  EXPECT_EQ(img.pixels.size(), 63u * 47 * 3);
  Image small = v.rgb_scaled(21, 16);
  EXPECT_EQ(small.pixels.size(), 21u * 16 * 3);
}

TEST(VideoDecoder, SeekingFindsTheSameFramesAsDecodingEverything) {
  // Long GOPs with B-frames: advance_to must land on the first frame at or after each time.
  const std::string path = generated_video(
      "gop.mp4", "-f lavfi -i testsrc=s=64x48:r=25:d=12 -c:v libx264 -bf 2 -g 50 -keyint_min 50 -sc_threshold 0");
  const auto pts = all_pts(path);
  ASSERT_EQ(pts.size(), 300u);
  VideoDecoder v(path);
  VideoDecoder seq(path);
  for (double t : {0.0, 0.01, 0.5, 3.3, 3.3, 7.96, 8.0, 11.5, 11.95}) {
    ASSERT_TRUE(v.advance_to(t)) << t;
    EXPECT_NEAR(v.pts_s(), std::ceil(t * 25 - 1e-6) / 25, 1e-6) << t;
    ASSERT_TRUE(seq.advance_to(t));
    // The same picture as a plain sequential decode reaching that frame.
    EXPECT_EQ(v.rgb().pixels, seq.rgb().pixels) << t;
  }
  EXPECT_FALSE(v.advance_to(11.99));  // past the last frame's start: the stream ends
  EXPECT_NEAR(v.pts_s(), 11.96, 1e-6);
  v.rewind();
  ASSERT_TRUE(v.next());
  EXPECT_NEAR(v.pts_s(), 0.0, 1e-6);
}

TEST(VideoDecoder, BadInputsNameTheFileAndTheProblem) {
  const std::string dir = test::temp_dir("bad-videos");
  test::expect_error([&] { VideoDecoder v(dir + "/missing.mp4"); }, {"missing.mp4", "no such file"});
  { std::ofstream(dir + "/empty.mp4"); }
  test::expect_error([&] { VideoDecoder v(dir + "/empty.mp4"); }, {"empty.mp4", "empty file"});
  { std::ofstream(dir + "/notes.mp4") << "these are my notes, not a video\n"; }
  test::expect_error([&] { VideoDecoder v(dir + "/notes.mp4"); }, {"notes.mp4", "not a video file"});
  test::expect_error([&] { VideoDecoder v(dir); }, {dir, "directory"});

  const std::string audio = generated_video("tone.m4a", "-f lavfi -i sine=d=1 -c:a aac");
  test::expect_error([&] { VideoDecoder v(audio); }, {"tone.m4a", "no video stream (audio only)"});
  test::expect_error([&] { VideoDecoder v(test::fixture("images/rgb_160x120.png")); },
                     {"rgb_160x120.png", "still image"});
  // No frames at all: an mp4 written with -frames:v 0.
  const std::string none = generated_video("noframes.mp4", "-i " + shell_quote(test::colour_video().path) + " -c copy -frames:v 0");
  test::expect_error([&] { VideoDecoder v(none); }, {"noframes.mp4", "zero duration"});

  // Truncated in the middle, moov atom at the end: the container cannot even be opened.
  const std::string whole = read_file(test::colour_video().path);
  write_file_atomic(dir + "/cut.mp4", whole.substr(0, whole.size() / 2));
  test::expect_error([&] { VideoDecoder v(dir + "/cut.mp4"); }, {"cut.mp4", "not a video file"});

  // A codec no decoder knows: the Matroska codec id patched to an unknown one.
  const std::string mkv = read_file(test::colour_video("mkv", "-c:v libx264 -bf 3").path);
  std::string patched = mkv;
  const size_t at = patched.find("V_MPEG4/ISO/AVC");
  ASSERT_NE(at, std::string::npos);
  patched.replace(at, 15, "V_MPEG4/ISO/XYZ");
  write_file_atomic(dir + "/odd-codec.mkv", patched);
  test::expect_error([&] { VideoDecoder v(dir + "/odd-codec.mkv"); }, {"odd-codec.mkv", "unsupported video codec"});

  // Every packet garbage: opens, then nothing decodes.
  std::string garbage = mkv;
  const size_t cluster = garbage.find("\x1F\x43\xB6\x75");  // the first Cluster element
  ASSERT_NE(cluster, std::string::npos);
  for (size_t i = cluster + 64; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 7919) & 0xFF);
  write_file_atomic(dir + "/garbage.mkv", garbage);
  std::string msg = test::error_message([&] {
    VideoDecoder v(dir + "/garbage.mkv");
    while (v.next()) {
    }
  });
  EXPECT_NE(msg.find("garbage.mkv"), std::string::npos) << msg;
}

}  // namespace
}  // namespace clipcap
