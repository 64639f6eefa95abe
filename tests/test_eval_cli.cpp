// clipcap-eval end to end: a tiny model (tiny-clip + tiny-gpt2, fresh mapping) on a tiny dataset
// built by the real clipcap-data from the fixture images; every output file checked; the report
// opened in headless Chromium from a copy of the report directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include <torch/torch.h>

#include "common/atomic_file.h"
#include "common/json_util.h"
#include "image/image_io.h"
#include "eval/caption_metrics.h"
#include "eval/clip_score.h"
#include "eval/prediction_records.h"
#include "model/clip.h"
#include "model/weights/safetensors.h"
#include "train/bpe_trainer.h"
#include "model/captioner.h"
#include "tests/test_support.h"

namespace clipcap {
namespace {

namespace fs = std::filesystem;
using test::fixture;
using test::run;
using test::RunResult;
using test::temp_dir;
using test::tool;

struct EvalSetup {
  std::string dir, data, model, report;
  std::vector<std::string> test_images;
  RunResult eval;
};

// Built once per process: dataset, model in RUN/best with a training log beside it, one evaluation.
const EvalSetup& setup() {
  static const EvalSetup s = [] {
    EvalSetup s;
    s.dir = temp_dir("eval-cli");
    fs::create_directories(s.dir + "/images");
    for (const auto& e : fs::directory_iterator(fixture("images")))
      fs::copy_file(e.path(), s.dir + "/images/" + e.path().filename().string());
    // Test images with 3, 1, 2 and 2 references (ids differ in count on purpose).
    write_file_atomic(s.dir + "/captions.jsonl",
                      "{\"image\": \"rgb_160x120.png\", \"caption\": [\"A red and green square.\", \"Colours in a "
                      "box.\", \"A grey <test> & image.\"], \"split\": \"test\"}\n"
                      "{\"image\": \"palette_100x30.png\", \"caption\": \"A wide striped banner.\", \"split\": \"test\"}\n"
                      "{\"image\": \"tiny_rgb_20x13.png\", \"caption\": [\"A tiny icon.\", \"Small pixels.\"], \"split\": \"test\"}\n"
                      "{\"image\": \"gray_37x53.png\", \"caption\": [\"A gray picture.\", \"Shades of grey.\"], \"split\": \"test\"}\n"
                      "{\"image\": \"la_29x71.png\", \"caption\": \"A tall image.\", \"split\": \"train\"}\n"
                      "{\"image\": \"rgba_40x40.png\", \"caption\": \"A square with alpha.\", \"split\": \"train\"}\n");
    s.test_images = {"rgb_160x120.png", "palette_100x30.png", "tiny_rgb_20x13.png", "gray_37x53.png"};
    s.data = s.dir + "/data";
    const RunResult built = run(tool("clipcap-data") + " build --format jsonl --split-column split --captions " + s.dir +
                                "/captions.jsonl --images " + s.dir + "/images --clip " + fixture("tiny-clip") +
                                " --out " + s.data + " --threads 1 --workers 1");
    EXPECT_EQ(built.exit_code, 0) << built.err;

    MappingConfig m;
    m.ep_len = 2;
    m.num_layers = 1;
    m.n_heads = 2;
    m.forward_expansion = 2;
    s.model = s.dir + "/run/best";
    Captioner::create(fixture("tiny-clip"), fixture("tiny-gpt2"), m).save(s.model);
    write_file_atomic(s.dir + "/run/metrics.jsonl",
                      "{\"epoch\":1,\"step\":4,\"train_loss\":3.5,\"val_loss\":null,\"lr\":0.001,\"tokens_per_s\":10,"
                      "\"elapsed_s\":1.0,\"samples\":[{\"image\":\"a.png\",\"caption\":\"x\"}]}\n"
                      "{\"epoch\":2,\"step\":8,\"train_loss\":3.1,\"val_loss\":3.3,\"lr\":0.0005}\n"
                      "{\"epoch\":3,\"step\":12,\"train_loss\":2.8,\"val_loss\":3.0,\"lr\":0.0001}\n");
    write_file_atomic(s.dir + "/run/train_config.json", "{\"epochs\": 3, \"lr\": 0.001, \"note\": \"<b>tiny</b>\"}\n");

    s.report = s.dir + "/report";
    s.eval = run(tool("clipcap-eval") + " --model " + s.model + " --data " + s.data + " --out " + s.report +
                 " --max-len 6 --batch-size 3 --threads 1 --render");
    return s;
  }();
  return s;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (fs::exists(p)) return p;
  return "";
}

// The DOM after load (the report's own script has then set data-images / data-errors).
std::string dump_dom(const std::string& html, const std::string& profile, const std::string& screenshot = "") {
  const std::string base = chromium() + " --headless --disable-gpu --no-sandbox --disable-dev-shm-usage --no-first-run --hide-scrollbars --user-data-dir=" +
                           profile + " --window-size=1200,1800 ";
  if (!screenshot.empty()) {
    const RunResult shot = run(base + "--screenshot=" + screenshot + " file://" + html);
    EXPECT_EQ(shot.exit_code, 0) << shot.err;
  }
  const RunResult r = run(base + "--dump-dom file://" + html);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

std::string attribute(const std::string& dom, const std::string& name) {
  std::smatch m;
  if (std::regex_search(dom, m, std::regex(name + "=\"([^\"]*)\""))) return m[1];
  return "";
}

TEST(EvalCli, EvaluatesATinyModelAndWritesEveryFile) {
  const EvalSetup& s = setup();
  ASSERT_EQ(s.eval.exit_code, 0) << s.eval.err;
  EXPECT_NE(s.eval.out.find("CIDEr-D"), std::string::npos) << s.eval.out;

  const auto preds = read_jsonl(s.report + "/predictions.jsonl");
  ASSERT_EQ(preds.size(), s.test_images.size());
  std::vector<ScoredItem> items;
  for (size_t i = 0; i < preds.size(); ++i) {
    EXPECT_EQ(preds[i]["image"], s.test_images[i]);  // split order = index order
    ASSERT_TRUE(preds[i]["prediction"].is_string());
    for (const char* k : {"BLEU-1", "BLEU-4", "ROUGE-L", "CIDEr-D"}) EXPECT_TRUE(preds[i]["scores"][k].is_number()) << k;
    items.push_back({preds[i]["image"].get<std::string>(), preds[i]["prediction"].get<std::string>(),
                     preds[i]["references"].get<std::vector<std::string>>()});
  }
  EXPECT_EQ(preds[0]["references"].size(), 3u);
  EXPECT_EQ(preds[1]["references"].size(), 1u);

  const nlohmann::json metrics = read_json(s.report + "/metrics.json");
  const CaptionScores want = score_captions(items);  // the files agree with the library
  EXPECT_DOUBLE_EQ(metrics["metrics"]["CIDEr-D"].get<double>(), want["CIDEr-D"]);
  EXPECT_DOUBLE_EQ(metrics["metrics"]["BLEU-4"].get<double>(), want["BLEU-4"]);
  EXPECT_DOUBLE_EQ(metrics["metrics"]["ROUGE-L"].get<double>(), want["ROUGE-L"]);
  EXPECT_EQ(metrics["counts"]["images"], 4);
  EXPECT_EQ(metrics["counts"]["references"], 8);
  EXPECT_EQ(metrics["model"]["name"], "best");
  EXPECT_EQ(metrics["model"]["size"], "S");
  EXPECT_EQ(metrics["decoding"]["max_len"], 6);
  EXPECT_EQ(metrics["data"]["split"], "test");
  EXPECT_EQ(metrics["embeddings"]["source"], "stored") << metrics["embeddings"].dump();
  EXPECT_TRUE(metrics["time_s"]["total"].is_number());

  const std::string html = read_file(s.report + "/report.html");
  EXPECT_NE(html.find("<svg"), std::string::npos) << "no training curves";
  EXPECT_NE(html.find("train loss"), std::string::npos);
  EXPECT_NE(html.find("A grey &lt;test&gt; &amp; image."), std::string::npos);
  EXPECT_EQ(html.find("<test>"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;tiny&lt;/b&gt;"), std::string::npos) << "training config missing or unescaped";
  size_t thumbs = 0;
  for (const auto& e : fs::directory_iterator(s.report + "/images")) {
    ++thumbs;
    EXPECT_NE(html.find("images/" + e.path().filename().string()), std::string::npos);
  }
  EXPECT_EQ(thumbs, 4u);

  // --render: upstream's <out>/<model name>_<SIZE>/ with one captioned image per test image.
  for (const auto& img : s.test_images) {
    const std::string path = s.report + "/best_S/" + fs::path(img).replace_extension(".jpg").string();
    ASSERT_TRUE(fs::exists(path)) << path;
    const Image r = read_image(path);
    EXPECT_GE(r.width, 384);  // small images upscaled before the caption is drawn
  }
}

TEST(EvalCli, StoredAndRecomputedEmbeddingsGiveTheSameCaptions) {
  const EvalSetup& s = setup();
  ASSERT_EQ(s.eval.exit_code, 0) << s.eval.err;
  const std::string out = s.dir + "/report-model";
  const RunResult r = run(tool("clipcap-eval") + " --model " + s.model + " --data " + s.data + " --out " + out +
                          " --max-len 6 --threads 1 --embeddings model --run " + s.dir + "/run");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_json(out + "/metrics.json")["embeddings"]["source"], "model");
  const auto a = read_jsonl(s.report + "/predictions.jsonl"), b = read_jsonl(out + "/predictions.jsonl");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]["prediction"], b[i]["prediction"]) << i;
}

TEST(EvalCli, ReportOpensInAHeadlessBrowserFromACopiedDirectory) {
  const EvalSetup& s = setup();
  ASSERT_EQ(s.eval.exit_code, 0) << s.eval.err;
  ASSERT_FALSE(chromium().empty()) << "chromium is not installed (scripts/setup.sh installs it)";
  // The report directory alone is enough: copy it, and take the original (and the images) away.
  const std::string elsewhere = temp_dir("eval-report-copy") + "/moved";
  fs::copy(s.report, elsewhere, fs::copy_options::recursive);
  const std::string hidden = s.dir + "/images-away";
  fs::rename(s.dir + "/images", hidden);
  const std::string screenshot = s.dir + "/report.png";
  const std::string dom = dump_dom(elsewhere + "/report.html", s.dir + "/profile", screenshot);
  fs::rename(hidden, s.dir + "/images");

  const std::string loaded = attribute(dom, "data-images");
  ASSERT_FALSE(loaded.empty()) << "the report's load script did not run:\n" << dom.substr(0, 2000);
  const size_t slash = loaded.find('/');
  EXPECT_EQ(loaded.substr(0, slash), loaded.substr(slash + 1)) << "images failed to load: " << loaded;
  EXPECT_NE(loaded, "0/0");
  EXPECT_EQ(attribute(dom, "data-errors"), "0");
  EXPECT_NE(dom.find("<svg"), std::string::npos);
  ASSERT_TRUE(fs::exists(screenshot));
  EXPECT_GT(fs::file_size(screenshot), 10000u);

  // The check really catches a missing image.
  const auto first = *fs::directory_iterator(elsewhere + "/images");
  fs::remove(first.path());
  const std::string broken = dump_dom(elsewhere + "/report.html", s.dir + "/profile");
  EXPECT_NE(attribute(broken, "data-errors"), "0");
  EXPECT_NE(broken.find("image failed to load: images/" + first.path().filename().string()), std::string::npos);
}

// A small random CLIP with both towers and a CLIP BPE tokenizer (tiny-clip has no tokenizer).
std::string make_scoring_clip(const std::string& dir) {
  fs::create_directories(dir);
  BpeTrainOptions bpe;
  bpe.vocab_size = 530;
  bpe.min_frequency = 1;
  const ClipBpeVocab vocab = train_clip_bpe({"a red and green square", "a tiny icon", "a gray picture", "a photo depicts"}, bpe);
  nlohmann::json cfg = read_json(fixture("tiny-clip/config.json"));
  cfg["text_config"]["vocab_size"] = vocab.size();
  cfg["text_config"]["bos_token_id"] = vocab.bos_id();
  cfg["text_config"]["eos_token_id"] = vocab.eos_id();
  cfg["text_config"]["pad_token_id"] = vocab.eos_id();
  cfg["text_config"]["max_position_embeddings"] = 32;
  write_json_atomic(dir + "/config.json", cfg);
  fs::copy_file(fixture("tiny-clip/preprocessor_config.json"), dir + "/preprocessor_config.json");
  write_clip_bpe(vocab, dir, 32);
  torch::manual_seed(11);
  CLIPModel model(CLIPConfig::from_json(cfg, dir + "/config.json"));
  torch::NoGradGuard no_grad;
  NamedTensors weights;
  for (const auto& p : model->named_parameters()) {
    p.value().normal_(0, 0.2);
    weights.emplace_back(p.key(), p.value());
  }
  save_safetensors(dir + "/model.safetensors", weights);
  return dir;
}

TEST(EvalCli, ClipScoreAndRefClipScoreWithAClipDirectory) {
  const EvalSetup& s = setup();
  ASSERT_EQ(s.eval.exit_code, 0) << s.eval.err;
  const std::string clip = make_scoring_clip(s.dir + "/scoring-clip");
  const std::string out = s.dir + "/report-clip";
  const RunResult r = run(tool("clipcap-eval") + " --model " + s.model + " --data " + s.data + " --out " + out +
                          " --max-len 6 --threads 1 --clip " + clip);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("RefCLIPScore"), std::string::npos) << r.out;
  const nlohmann::json metrics = read_json(out + "/metrics.json");
  const auto preds = read_jsonl(out + "/predictions.jsonl");
  ASSERT_EQ(preds.size(), s.test_images.size());

  // The same numbers in-process, from the images and the written captions.
  ClipScorer scorer(clip);
  std::vector<Image> images;
  std::vector<std::string> candidates;
  std::vector<std::vector<std::string>> references;
  for (const auto& p : preds) {
    images.push_back(read_image(s.dir + "/images/" + p["image"].get<std::string>()));
    candidates.push_back(p["prediction"]);
    references.push_back(p["references"].get<std::vector<std::string>>());
  }
  const ClipScoreResult want = scorer.score(scorer.embed_images(images), candidates, references);
  EXPECT_NEAR(metrics["metrics"]["CLIPScore"].get<double>(), want.clip_score, 1e-6);
  EXPECT_NEAR(metrics["metrics"]["RefCLIPScore"].get<double>(), want.ref_clip_score, 1e-6);
  for (size_t i = 0; i < preds.size(); ++i) {
    const double cs = preds[i]["scores"]["CLIPScore"], ref = preds[i]["scores"]["RefCLIPScore"];
    EXPECT_NEAR(cs, want.per_image_clip_score[i], 1e-6);
    EXPECT_GE(cs, 0.0);
    EXPECT_LE(cs, 2.5);
    EXPECT_GE(ref, 0.0);
    EXPECT_LE(ref, 2 * cs + 1e-12);  // a harmonic mean is at most twice its smaller term
  }
  EXPECT_NE(read_file(out + "/report.html").find("<td>RefCLIPScore</td>"), std::string::npos);
}

TEST(EvalCli, ScoresJsonlAndCocoFilesAlikeAndComparesReports) {
  const std::string dir = temp_dir("eval-score");
  write_file_atomic(dir + "/p.jsonl",
                    "{\"image\": \"1.jpg\", \"prediction\": \"A dog runs on the grass.\", \"references\": [\"A dog "
                    "is running on the grass.\", \"The dog runs.\"]}\n"
                    "{\"image\": \"2.jpg\", \"prediction\": \"Two people ride bikes.\", \"references\": [\"Two "
                    "cyclists ride down the road.\"]}\n"
                    "{\"image\": \"3.jpg\", \"prediction\": \"\", \"references\": [\"A cat.\", \"A grey cat sits.\", "
                    "\"Cat on a mat.\"]}\n");
  write_file_atomic(dir + "/res.json",
                    R"([{"image_id": 1, "caption": "A dog runs on the grass."}, {"image_id": 2, "caption": "Two people ride bikes."},
                        {"image_id": 3, "caption": ""}])");
  write_file_atomic(dir + "/ann.json", R"({"images": [{"id": 1, "file_name": "1.jpg"}, {"id": 2, "file_name": "2.jpg"},
      {"id": 3, "file_name": "3.jpg"}], "annotations": [{"image_id": 1, "caption": "A dog is running on the grass."},
      {"image_id": 2, "caption": "Two cyclists ride down the road."}, {"image_id": 1, "caption": "The dog runs."},
      {"image_id": 3, "caption": "A cat."}, {"image_id": 3, "caption": "A grey cat sits."}, {"image_id": 3, "caption": "Cat on a mat."}]})");
  const RunResult a = run(tool("clipcap-eval") + " score --predictions " + dir + "/p.jsonl --out " + dir + "/a");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const RunResult b = run(tool("clipcap-eval") + " score --results " + dir + "/res.json --annotations " + dir +
                          "/ann.json --out " + dir + "/b");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out.find("BLEU-4"), std::string::npos);
  const nlohmann::json ma = read_json(dir + "/a/metrics.json"), mb = read_json(dir + "/b/metrics.json");
  const CaptionScores want = score_captions(scored_items(read_predictions_jsonl(dir + "/p.jsonl")));
  EXPECT_DOUBLE_EQ(ma["metrics"]["CIDEr-D"].get<double>(), want["CIDEr-D"]);
  EXPECT_EQ(ma["metrics"], mb["metrics"]);
  EXPECT_EQ(ma["counts"]["empty_predictions"], 1);
  EXPECT_EQ(read_jsonl(dir + "/a/predictions.jsonl").size(), 3u);

  const RunResult cmp = run(tool("clipcap-eval") + " compare " + dir + "/a " + dir + "/b --html " + dir + "/cmp.html");
  ASSERT_EQ(cmp.exit_code, 0) << cmp.err;
  EXPECT_NE(cmp.out.find("metric"), std::string::npos);
  EXPECT_NE(cmp.out.find(" a "), std::string::npos) << cmp.out;
  EXPECT_NE(cmp.out.find("CIDEr-D"), std::string::npos);
  EXPECT_NE(read_file(dir + "/cmp.html").find("<table>"), std::string::npos);
}

// A disk that fills while the report is written (here: a file-size limit that the report's
// largest file, report.html, exceeds, with SIGXFSZ ignored so the write fails as on a full disk):
// one message naming the file, and the previous report stays as it was, with no thumbnails of the
// failed run beside it. The report is written in full under OUT.tmp, then renamed.
TEST(EvalCli, AFullDiskLeavesThePreviousReportAsItWas) {
  const EvalSetup& s = setup();
  ASSERT_EQ(s.eval.exit_code, 0) << s.eval.err;
  uintmax_t html = fs::file_size(s.report + "/report.html"), others = 0;
  for (const auto& e : fs::recursive_directory_iterator(s.report))
    if (e.is_regular_file() && e.path().filename() != "report.html" && e.path().parent_path().filename() != "best_S")
      others = std::max(others, e.file_size());
  ASSERT_GT(html, others + 2048) << "report.html must be the largest file for this test";
  const uintmax_t limit_kb = (others + 1023) / 1024 + 1;
  ASSERT_LT(limit_kb * 1024, html);

  const std::string dir = temp_dir("eval-full-disk");
  const std::string out = dir + "/report";
  fs::copy(s.report, out, fs::copy_options::recursive);
  fs::remove_all(out + "/images");  // the previous report had none: the failed run's must not appear
  const std::string before = read_file(out + "/metrics.json");
  const std::string eval = tool("clipcap-eval") + " --model " + s.model + " --data " + s.data +
                           " --max-len 6 --threads 1 --out ";
  // bash: its ulimit -f counts KiB (dash's counts 512-byte blocks).
  const auto limited = [&](const std::string& cmd) {
    return "bash -c 'ulimit -f " + std::to_string(limit_kb) + "; trap \"\" XFSZ; exec " + cmd + "'";
  };
  RunResult r = run(limited(eval + out));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("report.html"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(out + "/metrics.json"), before);
  EXPECT_FALSE(fs::exists(out + "/images"));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  // No report before: none after, and nothing else either.
  r = run(limited(eval + dir + "/first"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/first"));
  EXPECT_FALSE(fs::exists(dir + "/first.tmp"));
  // With room, the same command replaces the previous report as a whole.
  r = run(eval + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out + "/images"));
  EXPECT_FALSE(fs::exists(out + "/best_S")) << "a file of the previous report survived the replacement";
}

// --out must be a report directory (or new, or empty): a directory of other files is refused
// before any work, and a path under a regular file is said in words.
TEST(EvalCli, OutMustBeNewEmptyOrAPreviousReport) {
  const EvalSetup& s = setup();
  const std::string dir = temp_dir("eval-out-kinds");
  fs::create_directories(dir + "/mine");
  write_file_atomic(dir + "/mine/notes.txt", "keep me\n");
  write_file_atomic(dir + "/afile", "x\n");
  const std::string eval = tool("clipcap-eval") + " --model " + s.model + " --data " + s.data + " --threads 1 --out ";
  RunResult r = run(eval + dir + "/mine");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(dir + "/mine: --out holds files that are not a clipcap-eval report"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(dir + "/mine/notes.txt"), "keep me\n");
  r = run(eval + dir + "/afile/report");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(dir + "/afile/report: cannot create the report directory (Not a directory)"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("filesystem error"), std::string::npos) << r.err;
}

TEST(EvalCli, BadInputsExitWithAMessage) {
  const std::string dir = temp_dir("eval-bad");
  write_file_atomic(dir + "/p.jsonl", "{\"image\": \"1.jpg\", \"prediction\": \"x\"}\n");
  RunResult r = run(tool("clipcap-eval") + " score --predictions " + dir + "/p.jsonl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("p.jsonl:1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("references"), std::string::npos) << r.err;
  r = run(tool("clipcap-eval") + " score");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--predictions"), std::string::npos) << r.err;
  r = run(tool("clipcap-eval") + " --data " + dir + " --out " + dir + "/o");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--model"), std::string::npos) << r.err;
  r = run(tool("clipcap-eval") + " --model " + dir + "/nope --data " + dir + " --out " + dir + "/o");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;
  r = run(tool("clipcap-eval") + " compare " + dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("metrics.json"), std::string::npos) << r.err;
  r = run(tool("clipcap-eval") + " --embeddings sometimes");
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace clipcap

namespace clipcap {
namespace {

// clipcap-eval --rerank clip with the embedded default on fixture images embedded by its own CLIP:
// predictions.jsonl records each caption's rerank scores; --clip reranks when --rerank-clip is not
// given; one candidate gives the plain captions.
TEST(EvalCli, RerankedEvaluationRecordsScoresAndOneCandidateIsPlain) {
  const std::string dir = temp_dir("eval-rerank");
  fs::create_directories(dir + "/images");
  std::string lines;
  for (const auto& e : fs::directory_iterator(fixture("images"))) {
    const std::string name = e.path().filename().string();
    fs::copy_file(e.path(), dir + "/images/" + name);
    lines += "{\"image\": \"" + name + "\", \"caption\": \"grinning face\", \"split\": \"test\"}\n";
  }
  write_file_atomic(dir + "/captions.jsonl", lines);
  const std::string model = test::source_path("models/emoji-tiny"), clip = test::source_path("models/emoji-clip");
  const RunResult built = run(tool("clipcap-data") + " build --format jsonl --split-column split --captions " + dir +
                              "/captions.jsonl --images " + dir + "/images --clip " + clip + " --out " + dir +
                              "/data --threads 1 --workers 1");
  ASSERT_EQ(built.exit_code, 0) << built.err;
  auto eval = [&](const std::string& name, const std::string& flags) {
    const RunResult r = run(tool("clipcap-eval") + " --model " + model + " --data " + dir + "/data --out " + dir + "/" +
                            name + " --clip " + clip + " --beam 3 --threads 1 " + flags);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return read_jsonl(dir + "/" + name + "/predictions.jsonl");
  };
  const auto plain = eval("plain", ""), one = eval("one", "--rerank clip --rerank-candidates 1"),
             four = eval("four", "--rerank clip --rerank-candidates 4");
  ASSERT_EQ(plain.size(), 6u);
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_FALSE(plain[i].contains("rerank"));
    EXPECT_EQ(one[i]["prediction"], plain[i]["prediction"]);
    EXPECT_EQ(one[i]["rerank"]["candidates"], 1);
    EXPECT_EQ(four[i]["rerank"]["candidates"], 4);
  }
  const auto metrics = read_json(dir + "/four/metrics.json");
  EXPECT_EQ(metrics["decoding"]["rerank"], "clip");
  EXPECT_EQ(metrics["decoding"]["rerank_candidates"], 4);
}

}  // namespace
}  // namespace clipcap
