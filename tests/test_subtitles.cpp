// Subtitle cues and writers: millisecond rounding, merging, SRT / WebVTT / JSON text, and files
// that ffmpeg's own SRT and WebVTT parsers read back cue for cue.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "infer/caption_json_writer.h"
#include "infer/cue.h"
#include "infer/frame_sampler.h"
#include "infer/srt_writer.h"
#include "infer/vtt_writer.h"
#include "tests/test_support.h"
#include "tests/test_video_support.h"

namespace clipcap {
namespace {

TEST(Subtitles, TimesAreRoundedToTheMillisecondNotTruncated) {
  EXPECT_EQ(format_timestamp(1.9996, ','), "00:00:02,000");  // upstream truncated this to 00:00:01,999
  EXPECT_EQ(format_timestamp(1.9994, ','), "00:00:01,999");
  EXPECT_EQ(format_timestamp(0.0005, '.'), "00:00:00.001");
  EXPECT_EQ(format_timestamp(59.9999, ','), "00:01:00,000");
  EXPECT_EQ(format_timestamp(3723.25, ','), "01:02:03,250");
  EXPECT_EQ(format_timestamp(-0.2, ','), "00:00:00,000");
  EXPECT_EQ(format_timestamp(100 * 3600.0 + 1, ','), "100:00:01,000");
  EXPECT_DOUBLE_EQ(rounded_seconds(1.9996), 2.0);
  EXPECT_DOUBLE_EQ(rounded_seconds(2.0 / 3), 0.667);
}

TEST(Subtitles, MergeJoinsNeighboursWithTheSameCaptionOnly) {
  std::vector<Cue> cues = {{0, 1, 0.0, "A red wall."},  {1, 2, 1.0, "A red wall."}, {2, 3, 2.0, "A blue sky."},
                           {3, 4, 3.0, "A red wall."},  {4, 5, 4.0, "A red wall."}};
  auto merged = merge_adjacent(cues);
  ASSERT_EQ(merged.size(), 3u);
  EXPECT_EQ(merged[0].start_s, 0);
  EXPECT_EQ(merged[0].end_s, 2);
  EXPECT_EQ(merged[0].frame_s, 0.0);
  EXPECT_EQ(merged[1].text, "A blue sky.");
  EXPECT_EQ(merged[2].start_s, 3);
  EXPECT_EQ(merged[2].end_s, 5);
}

TEST(Subtitles, CuesShorterThanAMillisecondAreAbsorbedWithoutGaps) {
  std::vector<Cue> cues = {{0, 0.0004, 0, "a"}, {0.0004, 1, 0, "b"}, {1, 1.0002, 1, "c"}, {1.0002, 2, 1, "d"}};
  auto merged = merge_adjacent(cues);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].start_s, 0);
  EXPECT_EQ(merged[0].text, "b");
  EXPECT_EQ(merged[0].end_s, 1.0002);
  EXPECT_EQ(merged[1].start_s, 1.0002);
  EXPECT_EQ(merged[1].end_s, 2);
}

TEST(Subtitles, SrtAndVttText) {
  std::vector<Cue> cues = {{0, 1.5, 0, "A dog\nruns."}, {1.5, 2.0004, 1.5, ""}, {2.0004, 3, 2.1, "Fish & <chips> -->"}};
  EXPECT_EQ(srt_text(cues),
            "1\n00:00:00,000 --> 00:00:01,500\nA dog runs.\n\n"
            "2\n00:00:01,500 --> 00:00:02,000\n(no caption)\n\n"
            "3\n00:00:02,000 --> 00:00:03,000\nFish & <chips> -->\n\n");
  EXPECT_EQ(vtt_text(cues),
            "WEBVTT\n\n"
            "00:00:00.000 --> 00:00:01.500\nA dog runs.\n\n"
            "00:00:01.500 --> 00:00:02.000\n(no caption)\n\n"
            "00:00:02.000 --> 00:00:03.000\nFish &amp; &lt;chips&gt; --&gt;\n\n");
}

TEST(Subtitles, JsonIsUpstreamsListWithNumericTimes) {
  std::vector<Cue> cues = {{0, 1.9996, 0.04, "A cat."}, {1.9996, 4, 2.0, ""}};
  auto j = caption_json(cues);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["start"], "00:00:00,000");
  EXPECT_EQ(j[0]["end"], "00:00:02,000");
  EXPECT_EQ(j[0]["lang"], "en");
  EXPECT_EQ(j[0]["text"], "A cat.");
  EXPECT_DOUBLE_EQ(j[0]["end_s"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(j[0]["frame_s"].get<double>(), 0.04);
  EXPECT_EQ(j[1]["start"], "00:00:02,000");
  EXPECT_EQ(j[1]["text"], "");
}

TEST(Subtitles, FfmpegParsesEveryCueOfBothFormats) {
  // Uniform cues of an awkward duration: 7 cues over 10.0007 s, different captions.
  auto segs = uniform_segments(10.0007, 7);
  std::vector<Cue> cues;
  for (size_t i = 0; i < segs.size(); ++i)
    cues.push_back({segs[i].start_s, segs[i].end_s, segs[i].start_s, "Caption number " + std::to_string(i) + " & co."});
  const std::string dir = test::temp_dir("subtitles");
  write_srt(dir + "/a.srt", cues);
  write_vtt(dir + "/a.vtt", cues);
  write_caption_json(dir + "/a.json", cues);
  EXPECT_EQ(test::ffmpeg_subtitle_cues(dir + "/a.srt"), 7);
  EXPECT_EQ(test::ffmpeg_subtitle_cues(dir + "/a.vtt"), 7);
  auto j = nlohmann::json::parse(read_file(dir + "/a.json"));
  EXPECT_EQ(j.size(), 7u);
  EXPECT_EQ(j.back()["end"], "00:00:10,001");
}

}  // namespace
}  // namespace clipcap
