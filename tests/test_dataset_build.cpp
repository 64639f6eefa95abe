// The embedding dataset build (library level): golden embeddings, the dataset reader/writer.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "common/error.h"
#include "common/json_util.h"
#include "common/progress.h"
#include "common/sha256.h"
#include "data/dataset_builder.h"
#include "data/embedding_dataset.h"
#include "model/weights/safetensors.h"
#include "tests/dataset_test_util.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace clipcap::test;

namespace {

// A jsonl captions file naming the fixture images in manifest order (= expected tensor rows).
struct FixtureSet {
  std::string dir, captions;
  std::vector<std::string> files;
};

FixtureSet fixture_set() {
  FixtureSet s;
  s.dir = temp_dir("ds-golden");
  s.captions = s.dir + "/captions.jsonl";
  std::string text;
  const nlohmann::json manifest = clipcap::read_json(fixture("manifest.json"));
  for (const auto& img : manifest["images"]) {
    s.files.push_back(img["file"].get<std::string>());
    text += nlohmann::json{{"image", s.files.back()}, {"caption", "a picture of " + img["name"].get<std::string>()}}.dump() + "\n";
  }
  write_text(s.captions, text);
  return s;
}

clipcap::BuildOptions options(const FixtureSet& s, const std::string& out, std::ostream& log) {
  clipcap::BuildOptions o;
  o.captions = s.captions;
  o.images = fixtures_dir();
  o.clip = fixture("tiny-clip");
  o.source.format = "jsonl";
  o.out = out;
  o.batch_size = 4;  // batches of 4 and 2: other compositions than the fixture's single batch
  o.workers = 2;
  o.progress.out = &log;
  o.progress.tty = 0;
  return o;
}

}  // namespace

TEST(DatasetBuild, FixtureImagesGiveTheFixturePoolerOutputAndImageEmbeds) {
  FixtureSet s = fixture_set();
  std::ostringstream log;
  auto o = options(s, s.dir + "/pooled", log);
  clipcap::BuildResult r = clipcap::build_embedding_dataset(o);
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.embedded, static_cast<int64_t>(s.files.size()));
  EXPECT_FALSE(fs::exists(s.dir + "/pooled.partial"));  // work directory gone once finished

  clipcap::EmbeddingDataset ds(s.dir + "/pooled");
  ASSERT_EQ(ds.size(), static_cast<int64_t>(s.files.size()));
  for (size_t i = 0; i < s.files.size(); ++i) EXPECT_EQ(ds.entries()[i].image, s.files[i]);
  EXPECT_TENSOR_NEAR(ds.embeddings(), expected_tensor("clip.safetensors", "vision.pooler_output"), 1e-4);
  EXPECT_EQ(ds.meta()["embedding"]["kind"], "pooler_output");
  EXPECT_EQ(ds.meta()["clip"]["config_sha256"], clipcap::sha256_hex(clipcap::read_file(fixture("tiny-clip/config.json"))));
  EXPECT_EQ(ds.meta()["counts"]["images"], ds.size());
  EXPECT_NE(log.str().find("embed " + std::to_string(s.files.size())), std::string::npos) << log.str();

  o.out = s.dir + "/projected";
  o.embedding = "image_embeds";
  o.batch_size = 1;
  clipcap::build_embedding_dataset(o);
  clipcap::EmbeddingDataset projected(o.out);
  EXPECT_TENSOR_NEAR(projected.embeddings(), expected_tensor("clip.safetensors", "vision.image_embeds"), 1e-4);
  EXPECT_EQ(projected.meta()["embedding"]["kind"], "image_embeds");
}

TEST(DatasetBuild, BatchCompositionAndThreadsChangeNothingAndF16Halves) {
  FixtureSet s = fixture_set();
  std::ostringstream log;
  auto o = options(s, s.dir + "/b1", log);
  o.batch_size = 1;
  o.workers = 1;
  clipcap::build_embedding_dataset(o);
  o.out = s.dir + "/b6";
  o.batch_size = 6;
  o.workers = 3;
  o.store_dtype = "f16";
  clipcap::build_embedding_dataset(o);
  clipcap::EmbeddingDataset one(s.dir + "/b1"), six(s.dir + "/b6");
  EXPECT_EQ(six.stored_dtype(), torch::kFloat16);
  EXPECT_EQ(six.meta()["embedding"]["store_dtype"], "f16");
  EXPECT_TENSOR_NEAR(six.embeddings(), one.embeddings(), 4e-3);  // f16 rounding of values up to ~2.5
  EXPECT_EQ(clipcap::read_file(s.dir + "/b1/index.jsonl"), clipcap::read_file(s.dir + "/b6/index.jsonl"));

  o.out = s.dir + "/b6f32";
  o.store_dtype = "f32";
  clipcap::build_embedding_dataset(o);
  EXPECT_TENSOR_NEAR(clipcap::EmbeddingDataset(o.out).embeddings(), one.embeddings(), 1e-5);
}

TEST(DatasetBuild, RefusesToOverwriteAndNamesTheProblem) {
  FixtureSet s = fixture_set();
  std::ostringstream log;
  auto o = options(s, s.dir + "/out", log);
  clipcap::build_embedding_dataset(o);
  try {
    clipcap::build_embedding_dataset(o);
    FAIL() << "a second build onto a finished dataset must be refused";
  } catch (const clipcap::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--overwrite"), std::string::npos) << e.what();
  }
  o.overwrite = true;
  o.embedding = "image_embeds";
  clipcap::build_embedding_dataset(o);
  EXPECT_EQ(clipcap::EmbeddingDataset(o.out).meta()["embedding"]["kind"], "image_embeds");

  o.out = s.dir + "/x";
  o.embedding = "last_hidden_state";
  EXPECT_THROW(clipcap::build_embedding_dataset(o), clipcap::Error);
}

TEST(EmbeddingDataset, ReaderExplainsAnUnfinishedDirectory) {
  std::string dir = temp_dir("ds-unfinished");
  fs::create_directories(dir + "/out");
  fs::create_directories(dir + "/out.partial");
  try {
    clipcap::EmbeddingDataset ds(dir + "/out");
    FAIL();
  } catch (const clipcap::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("no meta.json"), std::string::npos) << m;
    EXPECT_NE(m.find("out.partial"), std::string::npos) << m;
  }
}

TEST(EmbeddingDataset, WriterAndReaderRoundTrip) {
  std::string dir = temp_dir("ds-roundtrip") + "/ds";
  torch::Tensor x = torch::arange(12, torch::kFloat32).reshape({3, 4});  // (N, D)
  {
    clipcap::EmbeddingDatasetWriter w(dir, 3, 4, torch::kFloat32);
    w.append({{"a.png", {"one"}, "train"}, {"b.png", {"two", "three"}, "test"}}, x.slice(0, 0, 2));
    w.append({{"sub/c.png", {"four"}, "val"}}, x.slice(0, 2, 3));
    w.add_error({"", "results.csv:7", "no separator", -1});
    w.add_error({"d.png", "", "empty file (0 bytes)", -1});
    w.finish({{"clip", {{"name", "tiny"}}}});
  }
  clipcap::EmbeddingDataset ds(dir);
  EXPECT_TENSOR_EQ(ds.embeddings(), x);
  EXPECT_EQ(ds.rows("test"), std::vector<int64_t>{1});
  EXPECT_EQ(ds.entries()[1].captions, (std::vector<std::string>{"two", "three"}));
  EXPECT_EQ(ds.meta()["counts"]["captions"], 4);
  EXPECT_EQ(ds.meta()["counts"]["image_errors"], 1);
  EXPECT_EQ(ds.meta()["counts"]["row_errors"], 1);
  ASSERT_EQ(ds.errors().size(), 2u);
  EXPECT_EQ(ds.errors()[1].image, "d.png");
  // The streamed file is an ordinary safetensors file.
  EXPECT_TENSOR_EQ(clipcap::load_safetensors(dir + "/embeddings.safetensors").at("image_embeds"), x);
}

TEST(Progress, PlainLinesOffATerminalWithRateAndEta) {
  std::ostringstream out;
  clipcap::ProgressOptions o;
  o.out = &out;
  o.tty = 0;
  o.unit = "img";
  o.log_every_seconds = 1e9;
  {
    clipcap::Progress p("embed", 10, o);
    p.skip(4);
    p.advance(3);
    EXPECT_EQ(out.str(), "");  // nothing before log_every_seconds
    EXPECT_EQ(p.line().rfind("embed 7/10 img | ", 0), 0u) << p.line();
  }
  EXPECT_NE(out.str().find("embed 7/10 img"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find('\r'), std::string::npos);
  EXPECT_EQ(clipcap::format_duration(3725), "1h02m");
  EXPECT_EQ(clipcap::format_duration(65), "1m05s");
}

TEST(Sha256, KnownDigests) {
  EXPECT_EQ(clipcap::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(clipcap::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(clipcap::sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
