// Batch inputs and results: txt/csv/jsonl/json video lists (EasyAnimate-style metadata), shards,
// and the append-only results file that survives a kill mid-line.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/atomic_file.h"
#include "infer/batch_results.h"
#include "infer/image_inputs.h"
#include "infer/video_list.h"
#include "tests/test_support.h"

namespace clipcap {
namespace {

TEST(VideoList, TxtCsvJsonlAndJson) {
  VideoListOptions o;
  EXPECT_EQ(parse_video_list("a.mp4\n\n# a comment\n  b c.mp4  \r\n", "list.txt", o),
            (std::vector<std::string>{"a.mp4", "b c.mp4"}));
  const std::string csv = "\xEF\xBB\xBFvideo_path,text\n\"x, y.mp4\",\"a \"\"quoted\"\"\ncaption\"\nz.mp4,plain\n";
  EXPECT_EQ(parse_video_list(csv, "meta.csv", o), (std::vector<std::string>{"x, y.mp4", "z.mp4"}));
  EXPECT_EQ(parse_video_list("{\"video_path\": \"a.mp4\", \"text\": \"t\"}\n\n{\"video_path\": \"b.mp4\"}\n", "m.jsonl", o),
            (std::vector<std::string>{"a.mp4", "b.mp4"}));
  EXPECT_EQ(parse_video_list("[{\"video_path\": \"a.mp4\"}, \"b.mp4\"]", "m.json", o),
            (std::vector<std::string>{"a.mp4", "b.mp4"}));
  o.root = "/data/videos";
  o.path_column = "file";
  EXPECT_EQ(parse_video_list("file\nrel.mp4\n/abs/x.mp4\n", "m.csv", o),
            (std::vector<std::string>{"/data/videos/rel.mp4", "/abs/x.mp4"}));
}

TEST(VideoList, ErrorsNameTheFileLineAndProblem) {
  VideoListOptions o;
  test::expect_error([&] { parse_video_list("path,text\na.mp4,t\n", "meta.csv", o); },
                     {"meta.csv", "no column 'video_path'", "path, text", "--path-column"});
  test::expect_error([&] { parse_video_list("{\"video_path\": \"a.mp4\"}\nnot json\n", "m.jsonl", o); },
                     {"m.jsonl:2", "not a JSON object"});
  test::expect_error([&] { parse_video_list("{\"path\": \"a.mp4\"}\n", "m.jsonl", o); }, {"m.jsonl:1", "video_path"});
  test::expect_error([&] { parse_video_list("video_path\n\"open\n", "m.csv", o); }, {"m.csv:2", "unterminated"});
  test::expect_error([&] { read_video_list("/nonexistent/list.txt", o); }, {"/nonexistent/list.txt", "no such file"});
}

TEST(VideoList, ShardsSplitDeterministicallyAndCoverEverything) {
  std::vector<std::string> items;
  for (int i = 0; i < 10; ++i) items.push_back("v" + std::to_string(i));
  std::vector<std::string> joined;
  for (int i = 0; i < 3; ++i) {
    auto part = take_shard(items, ShardSpec::parse(std::to_string(i) + "/3"));
    EXPECT_EQ(part.front(), "v" + std::to_string(i));
    joined.insert(joined.end(), part.begin(), part.end());
  }
  std::sort(joined.begin(), joined.end());
  auto sorted = items;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(joined, sorted);
  EXPECT_EQ(take_shard(items, ShardSpec::parse("1/4")), (std::vector<std::string>{"v1", "v5", "v9"}));
  test::expect_error([] { ShardSpec::parse("3/3"); }, {"--shard", "3/3"});
  test::expect_error([] { ShardSpec::parse("a/b"); }, {"--shard", "i/N"});
  EXPECT_EQ(unique_paths({"a", "b", "a", "c", "b"}), (std::vector<std::string>{"a", "b", "c"}));

  ::setenv("RANK", "2", 1);
  ::setenv("WORLD_SIZE", "5", 1);
  auto s = ShardSpec::from_env();
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 5);
  ::setenv("RANK", "5", 1);
  test::expect_error([] { ShardSpec::from_env(); }, {"RANK=5", "WORLD_SIZE=5"});
  ::unsetenv("RANK");
  ::unsetenv("WORLD_SIZE");
  EXPECT_EQ(ShardSpec::from_env().count, 1);
}

TEST(BatchResults, ResumeSkipsDoneVideosAndCutsATornLastLine) {
  const std::string path = test::temp_dir("results") + "/sub/results.jsonl";
  {
    BatchResults r(path);
    EXPECT_EQ(r.done_count(), 0u);
    r.append({{"path", "a.mp4"}, {"segments", nlohmann::json::array()}});
    r.append({{"path", "b.mp4"}, {"error", "b.mp4: truncated"}});
  }
  {  // a kill in the middle of the third line
    std::ofstream(path, std::ios::app) << "{\"path\": \"c.mp4\", \"segm";
  }
  {
    BatchResults r(path);
    EXPECT_GT(r.torn_bytes_dropped(), 0);
    EXPECT_TRUE(r.has("a.mp4"));
    EXPECT_TRUE(r.has("b.mp4"));
    EXPECT_FALSE(r.has("c.mp4"));
    r.append({{"path", "c.mp4"}});
  }
  auto lines = std::istringstream(read_file(path));
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) EXPECT_NO_THROW(nlohmann::json::parse(line)) << line;
  EXPECT_EQ(n, 3);
  BatchResults retry(path, /*retry_errors=*/true);
  EXPECT_TRUE(retry.has("a.mp4"));
  EXPECT_FALSE(retry.has("b.mp4"));

  std::ofstream(path, std::ios::app) << "garbage line\n{\"path\": \"d.mp4\"}\n";
  test::expect_error([&] { BatchResults r(path); }, {"results.jsonl:4", "not a results line"});
}

TEST(ImageInputs, FilesDirectoriesRecursivelySortedAndStdin) {
  const std::string dir = test::temp_dir("image-inputs");
  std::filesystem::create_directories(dir + "/b/deeper");
  for (const char* f : {"/z.png", "/a.JPG", "/notes.txt", "/b/deeper/c.webp", "/b/m.jpeg"}) std::ofstream(dir + f) << "x";
  std::istringstream none;
  EXPECT_EQ(expand_image_inputs({dir}, none),
            (std::vector<std::string>{dir + "/a.JPG", dir + "/b/deeper/c.webp", dir + "/b/m.jpeg", dir + "/z.png"}));
  std::istringstream in("first.png\n\n" + dir + "/b/deeper\r\nmissing.jpg\n");
  EXPECT_EQ(expand_image_inputs({"x.txt", "-", "-"}, in),
            (std::vector<std::string>{"x.txt", "first.png", dir + "/b/deeper/c.webp", "missing.jpg"}));
}

}  // namespace
}  // namespace clipcap
