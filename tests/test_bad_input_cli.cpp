// Inputs that were accepted silently or answered in a library's words (issue 23's list): each is
// now a one-line error naming the file or flag, with a non-zero exit and nothing written over.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/atomic_file.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace clipcap::test;

namespace {

void expect_error(const RunResult& r, int code, std::initializer_list<std::string> parts) {
  EXPECT_EQ(r.exit_code, code) << r.err;
  for (const auto& p : parts) EXPECT_NE(r.err.find(p), std::string::npos) << "'" << p << "' not in: " << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

std::string infer() { return tool("clipcap-infer") + " image -m " + source_path("models/emoji-tiny") + " --threads 1 "; }

}  // namespace

TEST(BadInputCli, NoImagesAndContradictoryLengthsAreErrors) {
  const std::string empty = temp_dir("bad-empty");
  expect_error(run(infer() + empty), 1, {empty + ": no image files"});
  expect_error(run("printf '' | " + infer() + "-"), 1, {"-: no image paths on standard input"});
  expect_error(run(infer() + "--min-len 30 --max-len 5 " + fixture("images/rgb_160x120.png")), 1,
               {"--min-len", "must not be above --max-len 5"});
  // A negative thread count was CLI11's "At Most 1 required but received 2".
  expect_error(run(tool("clipcap-infer") + " image -m " + source_path("models/emoji-tiny") + " --threads -3 " +
                   fixture("images/rgb_160x120.png")),
               1, {"--threads must be >= 0 (0 = all cores)"});
}

TEST(BadInputCli, EvalFlagsAndCompareNeverWriteOverAReport) {
  const std::string dir = temp_dir("bad-compare");
  for (const char* r : {"r1", "r2"}) {
    fs::create_directories(dir + "/" + r);
    clipcap::write_file_atomic(dir + "/" + r + "/metrics.json", "{\"metrics\": {\"BLEU-4\": 0.25}}\n");
  }
  const std::string before = clipcap::read_file(dir + "/r1/metrics.json");
  expect_error(run(tool("clipcap-eval") + " compare " + dir + "/r1 " + dir + "/r2 --html " + dir + "/r1/metrics.json"), 1,
               {dir + "/r1/metrics.json", "inside the report"});
  EXPECT_EQ(clipcap::read_file(dir + "/r1/metrics.json"), before);
  const RunResult ok = run(tool("clipcap-eval") + " compare " + dir + "/r1 " + dir + "/r2 --html " + dir + "/cmp.html");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_TRUE(fs::exists(dir + "/cmp.html"));
  const RunResult neg = run(tool("clipcap-eval") + " -m " + source_path("models/emoji-tiny") + " --data " + dir +
                            " --out " + dir + "/out --report-images -1");
  EXPECT_EQ(neg.exit_code, 2) << neg.err;
  EXPECT_NE(neg.err.find("--report-images"), std::string::npos) << neg.err;
  EXPECT_FALSE(fs::exists(dir + "/out"));
}

TEST(BadInputCli, TrainingValuesOutOfRangeNameTheFieldBeforeAnyWork) {
  const std::string dir = temp_dir("bad-train");
  for (const auto& [flag, field] : std::vector<std::pair<std::string, std::string>>{
           {"--dropout 1.5", "'dropout' must be in [0, 1) (got 1.5)"},
           {"--adam-beta1 1.5", "'adam_beta1' must be in [0, 1)"},
           {"--ep-len 0", "'ep_len' must be positive"}}) {
    // The data directory does not exist: the value is refused before the data is looked at.
    const RunResult r = run(tool("clipcap-train") + " --config " + source_path("configs/emoji-tiny.json") + " --data " +
                            dir + "/no-data --out " + dir + "/run " + flag);
    expect_error(r, 1, {field});
    EXPECT_FALSE(fs::exists(dir + "/run")) << flag;
  }
}

TEST(BadInputCli, EmptyVideoListAndNegativePixelLimit) {
  const std::string dir = temp_dir("bad-list");
  clipcap::write_file_atomic(dir + "/list.txt", "\n");
  expect_error(run(tool("clipcap-infer") + " video -m " + source_path("models/emoji-tiny") + " --list " + dir + "/list.txt"),
               1, {dir + "/list.txt: the list names no videos"});
  const RunResult r = run(tool("clipcap-data") + " build --captions x.csv --images " + dir + " --clip " +
                          fixture("tiny-clip") + " --out " + dir + "/ds --max-pixels -1");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--max-pixels"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/ds"));
  // A mistyped --images: said up front, no work directory left behind.
  clipcap::write_file_atomic(dir + "/cap.csv", "image_name| comment_number| comment\na.png| 0| A cap .\n");
  expect_error(run(tool("clipcap-data") + " build --captions " + dir + "/cap.csv --images " + dir + "/no-images --clip " +
                   fixture("tiny-clip") + " --out " + dir + "/ds --threads 1"),
               1, {dir + "/no-images: the --images directory does not exist"});
  EXPECT_FALSE(fs::exists(dir + "/ds.partial"));
}

TEST(BadInputCli, ATrainSplitWithoutCaptionsIsSaidBeforeTheTokenizer) {
  const std::string dir = temp_dir("bad-nocaptions");
  fs::create_directories(dir + "/images");
  for (const char* name : {"rgb_160x120.png", "palette_100x30.png"})
    fs::copy_file(fixture(std::string("images/") + name), dir + "/images/" + name);
  clipcap::write_file_atomic(dir + "/c.jsonl",
                             "{\"image\": \"rgb_160x120.png\", \"caption\": \"a square\", \"split\": \"test\"}\n"
                             "{\"image\": \"palette_100x30.png\", \"caption\": \"a banner\", \"split\": \"test\"}\n");
  const RunResult built = run(tool("clipcap-data") + " build --format jsonl --split-column split --captions " + dir +
                              "/c.jsonl --images " + dir + "/images --clip " + fixture("tiny-clip") + " --out " + dir +
                              "/ds --threads 1 --workers 1");
  ASSERT_EQ(built.exit_code, 0) << built.err;
  const RunResult r = run(tool("clipcap-train") + " --config " + source_path("configs/emoji-tiny.json") + " --data " + dir +
                          "/ds --out " + dir + "/run --threads 1");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(dir + "/ds"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("sentences_"), std::string::npos) << r.err;  // not SentencePiece's words
  EXPECT_FALSE(fs::exists(dir + "/run/tokenizer/tokenizer.model"));
}

// The remote backend's and the video pipeline's newer flags: each broken value is one line naming
// the flag or file, before any video is opened or any request sent, and nothing is written.
TEST(BadInputCli, RemoteAndVideoFlagsNameWhatIsWrong) {
  const std::string dir = temp_dir("bad-remote-flags");
  const std::string out = dir + "/out";
  const std::string video = dir + "/never-opened.mp4";
  const std::string base = tool("clipcap-infer") + " video --backend openai --endpoint http://127.0.0.1:9/v1 --api-model m " +
                           "--out-dir " + out + " ";
  clipcap::write_file_atomic(dir + "/empty-prompt.txt", "\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--prompt-file " + dir + "/missing.txt", dir + "/missing.txt: cannot read the prompt file"},
      {"--prompt-file " + dir + "/empty-prompt.txt", dir + "/empty-prompt.txt: the prompt file is empty"},
      {"--timeout 0", "--timeout must be above 0 seconds"},
      {"--retries -1", "--retries must be 0 or more"},
      {"--image-format gif", "--image-format must be jpeg or png"},
      {"--jpeg-quality 0", "--jpeg-quality must be between 1 and 100"},
      {"--summary-endpoint localhost:8001 --summary-model llm", "--summary-endpoint localhost:8001: the URL must start with http://"},
      {"--summary-endpoint http://127.0.0.1:9/v1", "--summary-endpoint http://127.0.0.1:9/v1: give the model"},
      {"--sample-point end", "--sample-point must be start or mid"},
      {"--video-workers -1", "--video-workers must be >= 0"},
      {"--first-prompt '{previous_caption}' --mode sliding", "--first-prompt: unknown field {previous_caption}"},
      {"--summary-endpoint http://127.0.0.1:9/v1 --summary-model llm --summary-prompt '{captions}'",
       "--summary-prompt: unknown field {captions}"},
  };
  for (const auto& [flags, message] : cases) {
    const RunResult r = run(base + flags + " " + video);
    expect_error(r, 1, {message});
    EXPECT_EQ(r.err.find("never-opened.mp4"), std::string::npos) << flags << ": " << r.err;  // said before the video
    EXPECT_FALSE(fs::exists(out)) << flags;
  }
  // The remote flags without the remote backend.
  expect_error(run(tool("clipcap-infer") + " image -m " + source_path("models/emoji-tiny") + " --prompt hi " +
                   fixture("images/rgb_160x120.png")),
               1, {"--prompt is for --backend openai"});
}

// An --out (or --out-dir, --results, --render) under a regular file: each tool names the path and
// says what is wrong, in its own words, not libstdc++'s "filesystem error: ... [path]".
TEST(BadInputCli, AnOutputPathUnderARegularFileIsSaidInWords) {
  const std::string dir = temp_dir("bad-out-under-file");
  const std::string file = dir + "/afile";
  clipcap::write_file_atomic(file, "x\n");
  clipcap::write_file_atomic(dir + "/p.jsonl", "{\"image\": \"a.jpg\", \"prediction\": \"a dog\", \"references\": [\"a dog\"]}\n");
  const RunResult score = run(tool("clipcap-eval") + " score --predictions " + dir + "/p.jsonl --out " + file + "/report");
  expect_error(score, 1, {file + "/report: cannot create directories (Not a directory)"});
  EXPECT_EQ(score.err.find("filesystem error"), std::string::npos) << score.err;
  fs::create_directories(dir + "/images");
  fs::copy_file(fixture("images/rgb_160x120.png"), dir + "/images/a.png");
  clipcap::write_file_atomic(dir + "/c.jsonl", "{\"image\": \"a.png\", \"caption\": \"a square\", \"split\": \"train\"}\n");
  const RunResult built = run(tool("clipcap-data") + " build --format jsonl --split-column split --captions " + dir +
                              "/c.jsonl --images " + dir + "/images --clip " + fixture("tiny-clip") + " --out " + dir +
                              "/ds --threads 1 --workers 1");
  ASSERT_EQ(built.exit_code, 0) << built.err;
  const RunResult train = run(tool("clipcap-train") + " --data " + dir + "/ds --text-model " + fixture("tiny-gpt2") +
                              " --set ep_len=2 --set num_layers=1 --set n_heads=4 --epochs 1 --threads 1 --out " + file + "/run");
  expect_error(train, 1, {file + "/run: cannot create directories (Not a directory)"});
  const RunResult render = run(infer() + fixture("images/rgb_160x120.png") + " --render " + file + "/pictures");
  EXPECT_EQ(render.exit_code, 1) << render.err;
  EXPECT_NE(render.err.find(file + "/pictures: cannot create the render directory (Not a directory)"), std::string::npos)
      << render.err;
  EXPECT_EQ(clipcap::read_file(file), "x\n");
}

