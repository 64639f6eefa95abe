// Pieces of clipcap-eval's outputs: prediction files (JSONL, COCO), the training log, the SVG
// charts, the HTML report, CLIPScore's formulas and the metric tables.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "eval/clip_score.h"
#include "eval/html_report.h"
#include "eval/metrics_summary.h"
#include "eval/prediction_records.h"
#include "eval/svg_chart.h"
#include "eval/training_log.h"
#include "tests/test_support.h"

namespace clipcap {
namespace {

using test::expect_error;
using test::temp_dir;

std::string write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  write_file_atomic(path, text);
  return path;
}

TEST(EvalPredictions, JsonlRecordsAndTheirErrors) {
  const std::string dir = temp_dir("eval-preds");
  const std::string ok = write(dir + "/p.jsonl",
                               "{\"image\": \"a.jpg\", \"prediction\": \"A dog.\", \"references\": [\"A dog runs.\", \"Dog.\"]}\n"
                               "\n"
                               "{\"image\": \"b.jpg\", \"prediction\": \"\", \"references\": \"One ref.\", \"scores\": {}}\n");
  const auto r = read_predictions_jsonl(ok);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].references, (std::vector<std::string>{"A dog runs.", "Dog."}));
  EXPECT_EQ(r[1].references, (std::vector<std::string>{"One ref."}));
  EXPECT_EQ(r[1].prediction, "");

  const std::string no_refs = write(dir + "/n.jsonl", "{\"image\": \"a\", \"prediction\": \"x\", \"references\": []}\n");
  expect_error([&] { read_predictions_jsonl(no_refs); }, {"n.jsonl:1", "references", "empty"});
  const std::string bad = write(dir + "/b.jsonl", "{\"image\": \"a\", \"prediction\": \"x\", \"references\": [\"y\"]}\n{oops\n");
  expect_error([&] { read_predictions_jsonl(bad); }, {"b.jsonl:2", "not valid JSON"});
  const std::string dup = write(dir + "/d.jsonl",
                                "{\"image\": \"a\", \"prediction\": \"x\", \"references\": [\"y\"]}\n"
                                "{\"image\": \"a\", \"prediction\": \"z\", \"references\": [\"y\"]}\n");
  expect_error([&] { read_predictions_jsonl(dup); }, {"d.jsonl:2", "'a'", "more than once"});
  const std::string no_pred = write(dir + "/m.jsonl", "{\"image\": \"a\", \"references\": [\"y\"]}\n");
  expect_error([&] { read_predictions_jsonl(no_pred); }, {"m.jsonl:1", "prediction"});
  expect_error([&] { read_predictions_jsonl(dir + "/absent.jsonl"); }, {"absent.jsonl", "cannot open"});
}

TEST(EvalPredictions, CocoResultsTakeTheAnnotationOrderAndAllReferences) {
  const std::string dir = temp_dir("eval-coco");
  const std::string ann = write(dir + "/ann.json", R"({
    "images": [{"id": 7, "file_name": "seven.jpg"}, {"id": 3, "file_name": "three.jpg"}, {"id": 9}],
    "annotations": [{"image_id": 3, "caption": "A cat."}, {"image_id": 7, "caption": "A dog."},
                    {"image_id": 3, "caption": "A small cat."}, {"image_id": 9, "caption": "Unused."}]})");
  const std::string res = write(dir + "/res.json", R"([{"image_id": 3, "caption": "a cat"}, {"image_id": 7, "caption": "a dog"}])");
  const auto r = read_coco_results(res, ann);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].image, "seven.jpg");
  EXPECT_EQ(r[0].prediction, "a dog");
  EXPECT_EQ(r[1].image, "three.jpg");
  EXPECT_EQ(r[1].references, (std::vector<std::string>{"A cat.", "A small cat."}));

  const std::string twice = write(dir + "/twice.json", R"([{"image_id": 3, "caption": "a"}, {"image_id": 3, "caption": "b"}])");
  expect_error([&] { read_coco_results(twice, ann); }, {"twice.json", "image_id 3", "more than one caption"});
  const std::string stranger = write(dir + "/stranger.json", R"([{"image_id": 42, "caption": "a"}])");
  expect_error([&] { read_coco_results(stranger, ann); }, {"stranger.json", "image_id 42", "ann.json"});
  expect_error([&] { read_coco_results(res, res); }, {"res.json", "annotations"});
}

TEST(EvalPredictions, WrittenLinesCarryPerImageScoresAndReadBack) {
  const std::string dir = temp_dir("eval-write");
  const std::vector<PredictionRecord> recs = {{"a.jpg", "a dog runs", {"A dog runs.", "A dog."}},
                                              {"b.jpg", "a \"cat\" \xC3\xA9", {"A cat."}}};
  const CaptionScores s = score_captions(scored_items(recs));
  ClipScoreResult clip;
  clip.per_image_clip_score = {0.5, 0.25};
  clip.per_image_ref_clip_score = {0.4, 0.2};
  write_predictions_jsonl(dir + "/p.jsonl", recs, s, &clip);
  std::ifstream in(dir + "/p.jsonl");
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["prediction"], "a \"cat\" \xC3\xA9");
  EXPECT_DOUBLE_EQ(lines[0]["scores"]["CIDEr-D"].get<double>(), s.items[0]["CIDEr-D"]);
  EXPECT_DOUBLE_EQ(lines[0]["scores"]["BLEU-4"].get<double>(), s.items[0]["BLEU-4"]);
  EXPECT_DOUBLE_EQ(lines[1]["scores"]["RefCLIPScore"].get<double>(), 0.2);
  EXPECT_EQ(read_predictions_jsonl(dir + "/p.jsonl")[1].references, recs[1].references);  // round trip
}

TEST(EvalTrainingLog, ReadsEpochsNullValLossAndConfig) {
  const std::string run = temp_dir("eval-run");
  write(run + "/metrics.jsonl",
        "{\"epoch\":1,\"step\":10,\"train_loss\":2.5,\"val_loss\":null,\"lr\":1e-4,\"samples\":[]}\n"
        "{\"epoch\":2,\"step\":20,\"train_loss\":2.0,\"val_loss\":2.2,\"lr\":5e-5}\n");
  write(run + "/train_config.json", "{\"epochs\": 2, \"lr\": 0.0001}");
  std::filesystem::create_directories(run + "/best");
  const TrainingLog log = read_training_log(run);
  ASSERT_EQ(log.epochs.size(), 2u);
  EXPECT_TRUE(std::isnan(log.epochs[0].val_loss));
  EXPECT_DOUBLE_EQ(log.epochs[1].val_loss, 2.2);
  EXPECT_EQ(log.epochs[1].step, 20);
  EXPECT_EQ(log.train_config["epochs"], 2);
  ASSERT_TRUE(find_run_dir(run + "/best/").has_value());
  EXPECT_EQ(std::filesystem::canonical(*find_run_dir(run + "/best")), std::filesystem::canonical(run));
  EXPECT_FALSE(find_run_dir(run).has_value());  // its parent is no run directory

  write(run + "/metrics.jsonl", "{\"epoch\":1}\nnot json\n");
  expect_error([&] { read_training_log(run); }, {"metrics.jsonl:2", "not valid JSON"});
}

TEST(EvalCharts, SvgHasOnePathPerSeriesSegmentAndEscapesText) {
  LineChart c;
  c.title = "loss <train & val>";
  c.x_label = "epoch";
  c.series.push_back({"train", "#1f77b4", {{1, 2.0}, {2, 1.5}, {3, 1.2}}});
  c.series.push_back({"val", "#d62728", {{1, NAN}, {2, 1.7}, {3, 1.6}}});
  const std::string svg = render_svg(c);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("loss &lt;train &amp; val&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("<train"), std::string::npos);
  EXPECT_NE(svg.find("data-series=\"train\" d=\"M"), std::string::npos);
  // The NaN epoch is a gap: val's path starts at epoch 2 with a single M.
  const size_t val = svg.find("data-series=\"val\"");
  ASSERT_NE(val, std::string::npos);
  const std::string d = svg.substr(val, svg.find("\" fill", val) - val);
  EXPECT_EQ(std::count(d.begin(), d.end(), 'M'), 1);
  EXPECT_EQ(std::count(d.begin(), d.end(), 'L'), 1);
  LineChart empty;
  EXPECT_NE(render_svg(empty).find("no data"), std::string::npos);
  EXPECT_EQ(html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
}

TEST(EvalReport, EscapesEveryTextAndShowsEachSection) {
  ReportInput in;
  in.title = "run <1>";
  in.metrics = {{"metrics", {{"BLEU-4", 0.25}, {"CIDEr-D", 1.5}}}, {"counts", {{"images", 2}}}};
  in.grid.push_back({"dir/<img>.jpg", "images/00000.jpg", "<script>alert(1)</script>", {"a & b", "\"quoted\""},
                     {{"CIDEr-D", 1.0}}});
  in.grid.push_back({"missing.jpg", "", "", {"ref"}, {}});
  in.best = {in.grid[0]};
  in.training.run_dir = "runs/x";
  in.training.epochs = {{1, 10, 2.0, NAN, 1e-4}, {2, 20, 1.5, 1.6, 5e-5}};
  in.training.train_config = {{"note", "</pre><b>"}};
  in.settings = {{"model", {{"dir", "m<1>"}}}};
  const std::string html = render_report_html(in);
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("a &amp; b"), std::string::npos);
  EXPECT_NE(html.find("&quot;quoted&quot;"), std::string::npos);
  EXPECT_NE(html.find("src=\"images/00000.jpg\""), std::string::npos);
  EXPECT_NE(html.find("image not available"), std::string::npos);
  EXPECT_NE(html.find("(empty caption)"), std::string::npos);
  EXPECT_NE(html.find("&lt;/pre&gt;&lt;b&gt;"), std::string::npos);
  EXPECT_NE(html.find("m&lt;1&gt;"), std::string::npos);
  EXPECT_NE(html.find("<td>CIDEr-D</td><td class=\"v\">1.5000</td>"), std::string::npos);
  EXPECT_EQ(html.find("BLEU-1"), std::string::npos);  // only metrics that exist
  EXPECT_EQ(std::count(html.begin(), html.end(), '\0'), 0);
  size_t svgs = 0;
  for (size_t p = html.find("<svg"); p != std::string::npos; p = html.find("<svg", p + 1)) ++svgs;
  EXPECT_EQ(svgs, 2u);  // loss and learning rate
  EXPECT_NE(html.find("Best images by CIDEr-D"), std::string::npos);
  EXPECT_EQ(html.find("Worst images"), std::string::npos);  // empty sections are left out
  for (const char* remote : {"src=\"http", "href=\"http", "src=\"//", "url("})  // nothing fetched from elsewhere
    EXPECT_EQ(html.find(remote), std::string::npos) << remote;
}

TEST(EvalClipScore, FormulasByHand) {
  // Unit vectors in 2-D: image (1, 0); candidates at 60 and 120 degrees from it.
  const double c60 = 0.5, s60 = std::sqrt(3.0) / 2;
  const torch::Tensor image = torch::tensor({1.0, 0.0, 1.0, 0.0}, torch::kFloat64).view({2, 2});
  const torch::Tensor cand = torch::tensor({c60, s60, -c60, s60}, torch::kFloat64).view({2, 2});
  // refs: image 0 has two (cos with its candidate 1 and 0.5), image 1 one at -1 (opposite).
  const torch::Tensor refs = torch::tensor({c60, s60, 1.0, 0.0, c60, -s60}, torch::kFloat64).view({3, 2});
  const ClipScoreResult r = clip_scores(image, cand, refs, {0, 0, 1});
  ASSERT_EQ(r.per_image_clip_score.size(), 2u);
  EXPECT_NEAR(r.per_image_clip_score[0], 2.5 * 0.5, 1e-12);
  EXPECT_EQ(r.per_image_clip_score[1], 0.0);  // negative cosine clipped to 0
  EXPECT_NEAR(r.per_image_ref_clip_score[0], 2 * 1.25 * 1.0 / (1.25 + 1.0), 1e-12);
  EXPECT_EQ(r.per_image_ref_clip_score[1], 0.0);  // both terms 0: 0, not NaN
  EXPECT_NEAR(r.clip_score, 0.625, 1e-12);
  EXPECT_NEAR(r.ref_clip_score, (2 * 1.25 / 2.25) / 2, 1e-12);
  const ClipScoreResult no_refs = clip_scores(image, cand, torch::Tensor(), {});
  EXPECT_TRUE(no_refs.per_image_ref_clip_score.empty());
  EXPECT_EQ(no_refs.ref_clip_score, 0.0);
}

TEST(EvalClipScore, ScorerRefusesADirectoryWithoutTokenizer) {
  expect_error([] { ClipScorer s(test::fixture("tiny-clip")); }, {"tiny-clip", "vocab.json", "--clip"});
}

TEST(EvalTables, MetricTableAndComparison) {
  const nlohmann::json a = {{"BLEU-1", 0.5}, {"CIDEr-D", 1.23456}}, b = {{"BLEU-1", 0.25}, {"CLIPScore", 0.7}};
  EXPECT_EQ(metrics_table(a), "BLEU-1        0.5000\nCIDEr-D       1.2346\n");
  const std::string t = comparison_table({"run-a", "run-b"}, {a, b});
  EXPECT_NE(t.find("run-a"), std::string::npos);
  EXPECT_NE(t.find("CLIPScore     -"), std::string::npos);
  EXPECT_NE(t.find("0.2500"), std::string::npos);
  EXPECT_EQ(t.find("ROUGE-L"), std::string::npos);
}

}  // namespace
}  // namespace clipcap
