// clipcap-data end to end: the real executable on small generated image sets.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/atomic_file.h"
#include "common/json_util.h"
#include "data/embedding_dataset.h"
#include "tests/dataset_test_util.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace clipcap::test;

namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    out.push_back(text.substr(start, nl - start));
    start = nl == std::string::npos ? text.size() : nl + 1;
  }
  return out;
}

// n images img_00.png ... in dir/images, a Flickr results.csv naming them (k+1 captions for image
// k % 3 == 0, else 5), plus a row for an image that does not exist.
std::string make_image_set(const std::string& dir, int n) {
  fs::create_directories(dir + "/images");
  std::string csv = "image_name| comment_number| comment\n";
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "img_%02d.png", i);
    write_test_png(dir + "/images/" + name, i, 16 + i % 7, 12 + i % 5);
    int captions = i % 3 == 0 ? 1 + i % 6 : 5;
    for (int c = 0; c < captions; ++c)
      csv += std::string(name) + "| " + std::to_string(c) + "| Picture " + std::to_string(i) + " caption " +
             std::to_string(c) + " .\n";
  }
  csv += "gone.png| 0| An image that is not there .\n";
  write_text(dir + "/results.csv", csv);
  return dir + "/results.csv";
}

std::string build_cmd(const std::string& dir, const std::string& out, const std::string& extra = "", int batch = 4) {
  return tool("clipcap-data") + " build --captions " + dir + "/results.csv --images " + dir + "/images --clip " +
         fixture("tiny-clip") + " --out " + out + " --batch-size " + std::to_string(batch) + " --threads 1 --workers 2 " +
         extra;
}

void expect_same_file(const std::string& a, const std::string& b) {
  EXPECT_EQ(clipcap::read_file(a), clipcap::read_file(b)) << a << " differs from " << b;
}

}  // namespace

TEST(DataCli, FlickrCsvWithUpstreamQuirks) {
  std::string dir = temp_dir("cli-flickr");
  fs::create_directories(dir + "/images");
  write_test_png(dir + "/images/four.png", 1);
  write_test_png(dir + "/images/six.png", 2, 40, 30);
  write_test_png(dir + "/images/2199200615.jpg", 3);  // PNG bytes under a .jpg name: decoded by content
  write_test_png(dir + "/images/truncated.png", 4);
  std::string bytes = clipcap::read_file(dir + "/images/truncated.png");
  write_text(dir + "/images/truncated.png", bytes.substr(0, bytes.size() / 2));
  write_text(dir + "/images/corrupt.png", "\x89PNG\r\n\x1a\n this is not really a PNG");
  write_text(dir + "/images/empty.png", "");
  std::string csv = "image_name| comment_number| comment\n";
  for (int i = 0; i < 4; ++i) csv += "four.png| " + std::to_string(i) + "| Four captions , number " + std::to_string(i) + " .\n";
  for (int i = 0; i < 6; ++i) csv += "six.png| " + std::to_string(i) + "|  Six Captions " + std::to_string(i) + " .\n";
  csv += "2199200615.jpg| 4   A dog runs across the grass .\n";  // line 12: no second separator
  csv += "unrecoverable.png this row has no separator\n";        // line 13
  csv += "missing.png| 0| A missing image .\n";
  csv += "corrupt.png| 0| A corrupt PNG .\n";
  csv += "truncated.png| 0| A truncated PNG .\n";
  csv += "empty.png| 0| An empty file .\n";
  write_text(dir + "/results.csv", csv);

  const std::string out = dir + "/ds";
  RunResult r = run(build_cmd(dir, out, "", 2));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("3 images"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("lost 4 images and 1 caption row"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("recovered 1 malformed caption row"), std::string::npos) << r.err;

  clipcap::EmbeddingDataset ds(out);
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.entries()[0].image, "four.png");
  EXPECT_EQ(ds.entries()[0].captions.size(), 4u);
  EXPECT_EQ(ds.entries()[0].captions[1], "Four captions , number 1 .");
  EXPECT_EQ(ds.entries()[1].captions.size(), 6u);
  EXPECT_EQ(ds.entries()[1].captions[0], "Six Captions 0 .");  // leading spaces gone, case kept
  EXPECT_EQ(ds.entries()[2].image, "2199200615.jpg");
  EXPECT_EQ(ds.entries()[2].captions, std::vector<std::string>{"A dog runs across the grass ."});
  EXPECT_EQ(ds.meta()["counts"]["captions"], 11);
  EXPECT_EQ(ds.meta()["counts"]["recovered_rows"], 1);
  EXPECT_EQ(ds.split_counts().at("train") + ds.split_counts().at("val") + ds.split_counts().at("test"), 3);

  auto errors = lines(clipcap::read_file(out + "/errors.jsonl"));
  ASSERT_EQ(errors.size(), 5u) << clipcap::read_file(out + "/errors.jsonl");
  auto e0 = nlohmann::json::parse(errors[0]);
  EXPECT_EQ(e0["row"], "results.csv:13");
  const char* images[] = {"missing.png", "corrupt.png", "truncated.png", "empty.png"};
  const char* reasons[] = {"no such file", "", "truncated", "empty"};
  for (int i = 0; i < 4; ++i) {
    auto e = nlohmann::json::parse(errors[i + 1]);
    EXPECT_EQ(e["image"], images[i]);
    EXPECT_NE(e["reason"].get<std::string>().find(reasons[i]), std::string::npos) << errors[i + 1];
  }

  // --strict: the first bad item is fatal and named.
  RunResult strict = run(build_cmd(dir, dir + "/strict", "--strict"));
  EXPECT_EQ(strict.exit_code, 1);
  EXPECT_NE(strict.err.find("results.csv:13"), std::string::npos) << strict.err;
  EXPECT_FALSE(fs::exists(dir + "/strict/meta.json"));
}

TEST(DataCli, KillMidRunThenRerunGivesIdenticalFiles) {
  std::string dir = temp_dir("cli-resume");
  make_image_set(dir, 40);
  RunResult clean = run(build_cmd(dir, dir + "/clean"));
  ASSERT_EQ(clean.exit_code, 0) << clean.err;

  const std::string out = dir + "/resumed";
  RunResult killed = run("CLIPCAP_TEST_ABORT_AFTER_CHUNKS=3 " + build_cmd(dir, out));
  EXPECT_NE(killed.exit_code, 0);
  EXPECT_FALSE(fs::exists(out));  // a partial dataset never looks complete
  int chunks = 0;
  for (const auto& e : fs::directory_iterator(out + ".partial"))
    chunks += e.path().filename().string().rfind("chunk_", 0) == 0;
  EXPECT_EQ(chunks, 3);

  RunResult other = run(build_cmd(dir, out, "--seed 5"));
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("--restart"), std::string::npos) << other.err;
  EXPECT_NE(other.err.find("split"), std::string::npos) << other.err;

  RunResult resumed = run(build_cmd(dir, out));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("12 done by an earlier run"), std::string::npos) << resumed.err;
  EXPECT_FALSE(fs::exists(out + ".partial"));
  for (const char* f : {"embeddings.safetensors", "index.jsonl", "errors.jsonl", "meta.json"})
    expect_same_file(dir + "/clean/" + f, out + "/" + f);
}

TEST(DataCli, ShardsThenMergeEqualOneRun) {
  std::string dir = temp_dir("cli-shards");
  make_image_set(dir, 23);
  ASSERT_EQ(run(build_cmd(dir, dir + "/whole")).exit_code, 0);
  std::string shard_dirs;
  for (int i = 0; i < 3; ++i) {
    std::string shard = dir + "/shard" + std::to_string(i);
    RunResult r = run(build_cmd(dir, shard, "--shard " + std::to_string(i) + "/3"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    shard_dirs += " " + shard;
  }
  RunResult missing = run(tool("clipcap-data") + " merge " + dir + "/bad " + dir + "/shard0 " + dir + "/shard2");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("shard 1/3 is missing"), std::string::npos) << missing.err;
  RunResult twice = run(tool("clipcap-data") + " merge " + dir + "/bad " + dir + "/shard0 " + dir + "/shard0");
  EXPECT_EQ(twice.exit_code, 1);

  RunResult merged = run(tool("clipcap-data") + " merge " + dir + "/merged" + shard_dirs);
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  for (const char* f : {"index.jsonl", "errors.jsonl", "meta.json"})
    expect_same_file(dir + "/whole/" + f, dir + "/merged/" + f);
  EXPECT_TENSOR_NEAR(clipcap::EmbeddingDataset(dir + "/merged").embeddings(),
                     clipcap::EmbeddingDataset(dir + "/whole").embeddings(), 1e-5);
}

TEST(DataCli, ZeroImagesIsAnErrorWithAMessage) {
  std::string dir = temp_dir("cli-zero");
  fs::create_directories(dir + "/images");
  write_text(dir + "/results.csv", "image_name| comment_number| comment\na.png| 0| Gone .\nb.png| 0| Gone too .\n");
  RunResult r = run(build_cmd(dir, dir + "/ds"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no image could be embedded"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("a.png"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/ds/meta.json"));

  write_text(dir + "/results.csv", "image_name| comment_number| comment\n");
  r = run(build_cmd(dir, dir + "/ds"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("results.csv: no usable caption rows"), std::string::npos) << r.err;

  r = run(build_cmd(dir, dir + "/ds", "--shard 3/3"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--shard"), std::string::npos) << r.err;
}

TEST(DataCli, StatsAndTokenize) {
  std::string dir = temp_dir("cli-stats");
  make_image_set(dir, 6);
  ASSERT_EQ(run(build_cmd(dir, dir + "/ds")).exit_code, 0);
  RunResult words = run(tool("clipcap-data") + " stats " + dir + "/ds");
  ASSERT_EQ(words.exit_code, 0) << words.err;
  EXPECT_NE(words.out.find("images      6"), std::string::npos) << words.out;
  EXPECT_NE(words.out.find("captions    25"), std::string::npos) << words.out;  // 1 + 5 + 5 + 4 + 5 + 5
  EXPECT_NE(words.out.find("words: min 5"), std::string::npos) << words.out;  // "Picture 0 caption 0 ."
  EXPECT_NE(words.out.find("lost        1 images"), std::string::npos) << words.out;
  RunResult tokens = run(tool("clipcap-data") + " stats " + dir + "/ds --tokenizer " + fixture("tiny-gpt2"));
  ASSERT_EQ(tokens.exit_code, 0) << tokens.err;
  EXPECT_NE(tokens.out.find("tokens (gpt2-bpe)"), std::string::npos) << tokens.out;

  auto manifest = clipcap::read_json(fixture("manifest.json"));
  std::string text = manifest["gpt2"]["sequences_text"][0];
  std::string ids;
  for (const auto& id : manifest["gpt2"]["sequences_ids"][0]) ids += (ids.empty() ? "" : " ") + id.dump();
  RunResult enc = run("printf '%s\\n' '" + text + "' | " + tool("clipcap-data") + " tokenize --tokenizer " + fixture("tiny-gpt2"));
  ASSERT_EQ(enc.exit_code, 0) << enc.err;
  EXPECT_EQ(enc.out, ids + "\n");
  RunResult dec = run("printf '%s\\n' '" + ids + "' | " + tool("clipcap-data") + " tokenize --decode --tokenizer " +
                      fixture("tiny-gpt2"));
  EXPECT_EQ(dec.out, text + "\n");
  RunResult bad = run("echo 'x 1' | " + tool("clipcap-data") + " tokenize --decode --tokenizer " + fixture("tiny-gpt2"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("stdin:1"), std::string::npos) << bad.err;
}
