// Caption sources (every input format) and image-level splits.
#include <gtest/gtest.h>

#include <set>

#include "common/error.h"
#include "data/dataset_sources.h"
#include "data/dataset_split.h"
#include "tests/dataset_test_util.h"
#include "tests/test_support.h"

using clipcap::CaptionSource;
using clipcap::SourceOptions;

namespace {

SourceOptions format(const std::string& f) {
  SourceOptions o;
  o.format = f;
  return o;
}

}  // namespace

TEST(DatasetSources, FlickrKeepsCaptionsAsWrittenAndRecoversTheKnownBadRow) {
  const std::string csv =
      "image_name| comment_number| comment\n"
      "1000092795.jpg| 0| Two young guys with shaggy hair look at their hands .\n"
      "1000092795.jpg| 1|  Two friends enjoy time spent together .\r\n"
      "2199200615.jpg| 4   A dog runs across the grass .\n"
      "\n"
      "broken.jpg without any separator\n"
      "halfbroken.jpg| no number here\n"
      "1000092795.jpg| 2| A man in a blue shirt | standing .\n";
  CaptionSource s = clipcap::parse_caption_source(csv, "results.csv", format("flickr"));
  ASSERT_EQ(s.items.size(), 2u);
  EXPECT_EQ(s.items[0].image, "1000092795.jpg");  // first-appearance order
  ASSERT_EQ(s.items[0].captions.size(), 3u);
  EXPECT_EQ(s.items[0].captions[0], "Two young guys with shaggy hair look at their hands .");  // case and " ." kept
  EXPECT_EQ(s.items[0].captions[1], "Two friends enjoy time spent together .");
  EXPECT_EQ(s.items[0].captions[2], "A man in a blue shirt | standing .");  // later '|' belong to the caption
  EXPECT_EQ(s.items[1].image, "2199200615.jpg");
  EXPECT_EQ(s.items[1].captions, std::vector<std::string>{"A dog runs across the grass ."});
  EXPECT_TRUE(s.items[0].split.empty());
  ASSERT_EQ(s.recovered.size(), 1u);
  EXPECT_EQ(s.recovered[0].row, "results.csv:4");
  ASSERT_EQ(s.problems.size(), 2u);
  EXPECT_EQ(s.problems[0].row, "results.csv:6");
  EXPECT_NE(s.problems[0].reason.find("separator"), std::string::npos);
  EXPECT_EQ(s.problems[1].row, "results.csv:7");
  EXPECT_EQ(s.caption_count(), 4);
}

TEST(DatasetSources, FlickrLowercaseOnRequest) {
  SourceOptions o = format("flickr");
  o.lowercase = true;
  CaptionSource s = clipcap::parse_caption_source("a.jpg| 0| A Dog .\n", "r.csv", o);
  ASSERT_EQ(s.items.size(), 1u);
  EXPECT_EQ(s.items[0].captions[0], "a dog .");
}

TEST(DatasetSources, KarpathyKeepsItsSplitsWithRestvalInTrain) {
  const std::string j = R"({"images": [
    {"filepath": "val2014", "filename": "a.jpg", "split": "restval", "sentences": [{"raw": "A cat ."}, {"raw": " Two cats "}]},
    {"filename": "b.jpg", "split": "test", "sentences": [{"tokens": ["a", "dog"]}]},
    {"filename": "c.jpg", "split": "val", "sentences": [{"raw": "x"}]},
    {"filename": "d.jpg", "split": "train", "sentences": []},
    {"split": "train", "sentences": [{"raw": "no file"}]}
  ], "dataset": "coco"})";
  CaptionSource s = clipcap::parse_caption_source(j, "dataset_coco.json", format("karpathy"));
  ASSERT_EQ(s.items.size(), 3u);
  EXPECT_EQ(s.items[0].image, "val2014/a.jpg");
  EXPECT_EQ(s.items[0].split, "train");
  EXPECT_EQ(s.items[0].captions, (std::vector<std::string>{"A cat .", "Two cats"}));
  EXPECT_EQ(s.items[1].split, "test");
  EXPECT_EQ(s.items[1].captions, std::vector<std::string>{"a dog"});
  EXPECT_EQ(s.items[2].split, "val");
  ASSERT_EQ(s.problems.size(), 2u);
  EXPECT_EQ(s.problems[0].row, "dataset_coco.json: images[3]");
}

TEST(DatasetSources, CocoCaptionsFollowTheImagesArray) {
  const std::string j = R"({"images": [{"id": 7, "file_name": "x.jpg"}, {"id": 3, "file_name": "y.jpg"},
                                       {"id": 9, "file_name": "lonely.jpg"}],
    "annotations": [{"image_id": 3, "caption": "first of y\n"}, {"image_id": 7, "caption": "only x"},
                    {"image_id": 3, "caption": "second of y"}, {"image_id": 42, "caption": "orphan"}]})";
  CaptionSource s = clipcap::parse_caption_source(j, "captions_val2014.json", format("coco"));
  ASSERT_EQ(s.items.size(), 2u);
  EXPECT_EQ(s.items[0].image, "x.jpg");
  EXPECT_EQ(s.items[1].image, "y.jpg");
  EXPECT_EQ(s.items[1].captions, (std::vector<std::string>{"first of y", "second of y"}));
  ASSERT_EQ(s.problems.size(), 2u);
  EXPECT_NE(s.problems[0].reason.find("42"), std::string::npos);
  EXPECT_NE(s.problems[1].row.find("lonely.jpg"), std::string::npos);
}

TEST(DatasetSources, JsonlWithCustomKeysSeveralRowsAndListsPerImage) {
  SourceOptions o = format("jsonl");
  o.image_column = "path";
  o.caption_column = "text";
  o.split_column = "subset";
  const std::string text =
      "{\"path\": \"a.png\", \"text\": \"one\", \"subset\": \"test\"}\n"
      "{\"path\": \"b.png\", \"text\": [\"two\", \"three\"]}\n"
      "not json\n"
      "{\"path\": \"a.png\", \"text\": \"four\"}\n"
      "{\"image\": \"c.png\", \"text\": \"wrong key\"}\n";
  CaptionSource s = clipcap::parse_caption_source(text, "meta.jsonl", o);
  ASSERT_EQ(s.items.size(), 2u);
  EXPECT_EQ(s.items[0].captions, (std::vector<std::string>{"one", "four"}));
  EXPECT_EQ(s.items[0].split, "test");
  EXPECT_EQ(s.items[1].captions, (std::vector<std::string>{"two", "three"}));
  EXPECT_EQ(s.items[1].split, "");
  ASSERT_EQ(s.problems.size(), 2u);
  EXPECT_EQ(s.problems[0].row, "meta.jsonl:3");
  EXPECT_EQ(s.problems[1].row, "meta.jsonl:5");
}

TEST(DatasetSources, CsvWithQuotesCustomColumnsAndSeparator) {
  SourceOptions o = format("csv");
  o.image_column = "file";
  o.caption_column = "caption";
  o.csv_separator = ';';
  const std::string text =
      "id;file;caption\n"
      "1;a.png;\"a caption; with the separator\"\n"
      "2;a.png;\"quoted \"\"word\"\" and a\nnewline\"\n"
      "3;b.png\n"
      "4;b.png;plain\n";
  CaptionSource s = clipcap::parse_caption_source(text, "list.csv", o);
  ASSERT_EQ(s.items.size(), 2u);
  EXPECT_EQ(s.items[0].captions,
            (std::vector<std::string>{"a caption; with the separator", "quoted \"word\" and a\nnewline"}));
  EXPECT_EQ(s.items[1].captions, std::vector<std::string>{"plain"});
  ASSERT_EQ(s.problems.size(), 1u);
  EXPECT_EQ(s.problems[0].row, "list.csv:5");  // the record after a two-line one

  o.caption_column = "text";
  try {
    clipcap::parse_caption_source(text, "list.csv", o);
    FAIL() << "a missing column must be an error";
  } catch (const clipcap::Error& e) {
    EXPECT_NE(std::string(e.what()).find("list.csv: header has no column 'text'"), std::string::npos) << e.what();
  }
}

TEST(DatasetSources, MissingFileAndUnknownFormatAreClearErrors) {
  try {
    clipcap::read_caption_source("/nonexistent/results.csv", format("flickr"));
    FAIL();
  } catch (const clipcap::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/results.csv"), std::string::npos);
  }
  EXPECT_THROW(clipcap::parse_caption_source("", "x", format("parquet")), clipcap::Error);
  EXPECT_THROW(clipcap::parse_caption_source("{", "x.json", format("coco")), clipcap::Error);
}

TEST(DatasetSplit, ByImageDeterministicFromTheSeedAndGivenSplitsWin) {
  std::vector<clipcap::SourceItem> items;
  for (int i = 0; i < 1000; ++i) items.push_back({"img" + std::to_string(i) + ".jpg", {"c"}, ""});
  items[5].split = "test";
  auto a = items, b = items, c = items;
  clipcap::assign_splits(a, {});
  clipcap::assign_splits(b, {});
  clipcap::SplitOptions other;
  other.seed = 7;
  clipcap::assign_splits(c, other);
  std::map<std::string, int> counts;
  int moved = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].split, b[i].split);
    counts[a[i].split] += 1;
    moved += a[i].split != c[i].split;
  }
  EXPECT_EQ(a[5].split, "test");
  EXPECT_EQ(counts["train"], 839);  // floor(999 * 0.84)
  EXPECT_EQ(counts["val"], 129);    // floor(999 * 0.13)
  EXPECT_EQ(counts["test"], 1000 - 839 - 129);
  EXPECT_GT(moved, 100);  // another seed, another split

  clipcap::SplitOptions bad;
  bad.train = 0.9;
  bad.val = 0.2;
  EXPECT_THROW(clipcap::assign_splits(a, bad), clipcap::Error);
}

TEST(DatasetSources, AByteOrderMarkIsSkippedAndNonUtf8RowsAreRecorded) {
  const std::string csv =
      "\xEF\xBB\xBFimage_name| comment_number| comment\n"  // Excel's "CSV UTF-8"
      "a.jpg| 0| A caf\xC3\xA9 .\n"                          // UTF-8: kept
      "b.jpg| 0| A caf\xE9 in Latin-1 .\n"                   // line 3: one Latin-1 byte
      "c.jpg| 0| Fine again .\n";
  CaptionSource s = clipcap::parse_caption_source(csv, "results.csv", format("flickr"));
  ASSERT_EQ(s.items.size(), 2u);  // the header row was recognised: no "image_name" image
  EXPECT_EQ(s.items[0].image, "a.jpg");
  EXPECT_EQ(s.items[0].captions[0], "A caf\xC3\xA9 .");
  EXPECT_EQ(s.items[1].image, "c.jpg");
  ASSERT_EQ(s.problems.size(), 1u);
  EXPECT_EQ(s.problems[0].row, "results.csv:3");
  EXPECT_NE(s.problems[0].reason.find("not valid UTF-8: byte 0xE9 at byte 6 of the caption"), std::string::npos)
      << s.problems[0].reason;
  // The same for CSV, with the BOM before the first column name.
  SourceOptions o = format("csv");
  o.image_column = "image";
  o.caption_column = "caption";
  CaptionSource c = clipcap::parse_caption_source("\xEF\xBB\xBFimage,caption\nx.png,\xFF\xFE\ny.png,ok\n", "c.csv", o);
  ASSERT_EQ(c.items.size(), 1u);
  EXPECT_EQ(c.items[0].image, "y.png");
  ASSERT_EQ(c.problems.size(), 1u);
  EXPECT_EQ(c.problems[0].row, "c.csv:2");
}

TEST(DatasetSources, AnUnterminatedQuoteLosesOnlyItsOwnRow) {
  SourceOptions o = format("csv");
  o.image_column = "image";
  o.caption_column = "caption";
  const std::string csv =
      "image,caption\n"
      "a.png,\"A quoted, fine caption\"\n"
      "b.png,\"This quote never closes\n"
      "c.png,Still read\n"
      "d.png,And this\n";
  CaptionSource s = clipcap::parse_caption_source(csv, "u.csv", o);
  ASSERT_EQ(s.items.size(), 3u);  // before: b's caption swallowed c and d, with nothing recorded
  EXPECT_EQ(s.items[0].captions[0], "A quoted, fine caption");
  EXPECT_EQ(s.items[1].image, "c.png");
  EXPECT_EQ(s.items[2].captions[0], "And this");
  ASSERT_EQ(s.problems.size(), 1u);
  EXPECT_EQ(s.problems[0].row, "u.csv:3");
  EXPECT_NE(s.problems[0].reason.find("never closes"), std::string::npos) << s.problems[0].reason;
}

// Found by tests/fuzz/fuzz_caption_sources: a number too large for a double is not a parse_error
// to nlohmann but an out_of_range, which escaped as "[json.exception.out_of_range.406] ...".
TEST(DatasetSources, ANumberBeyondADoubleIsABadRowOrANamedError) {
  SourceOptions o = format("jsonl");
  const std::string jsonl =
      "{\"image\": \"a.png\", \"caption\": \"fine\"}\n"
      "{\"image\": 2222222222222222222222E222244444, \"caption\": \"huge\"}\n";
  CaptionSource s = clipcap::parse_caption_source(jsonl, "c.jsonl", o);
  ASSERT_EQ(s.items.size(), 1u);
  ASSERT_EQ(s.problems.size(), 1u);
  EXPECT_EQ(s.problems[0].row, "c.jsonl:2");
  EXPECT_EQ(s.problems[0].reason, "invalid JSON");
  clipcap::test::expect_error([] { clipcap::parse_caption_source("{\"images\": [1e999999]}", "karpathy.json", format("karpathy")); },
                     {"karpathy.json: invalid JSON (a number out of range)"});
}
