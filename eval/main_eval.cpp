// clipcap-eval: evaluate a captioning model on a dataset split, score predictions made elsewhere,
// compare reports.
//
//   clipcap-eval --model DIR --data DATA_DIR [--split test] --out REPORT_DIR [--clip CLIP_DIR]
//       [--render] [decoding flags] [--threads N --dtype f32|bf16 --device cpu|cuda]
//       Captions the split, writes predictions.jsonl, metrics.json, report.html (eval/evaluate.h).
//   clipcap-eval score --predictions FILE.jsonl [--out DIR]
//   clipcap-eval score --results coco_results.json --annotations captions_val.json [--out DIR]
//       Scores captions without a model: prints the metric table; with --out also metrics.json and
//       predictions.jsonl with per-image scores.
//   clipcap-eval compare REPORT_DIR... [--html FILE]
//       One table of metrics across report directories.
//
// Metrics are the COCO caption toolkit's (BLEU-1..4, ROUGE-L, CIDEr-D; eval/caption_metrics.h),
// plus CLIPScore / RefCLIPScore with --clip (eval/clip_score.h).
// Exit codes: 0 success, 1 an error (missing model/data, unreadable file, ...), 2 usage error.
#include <CLI/CLI.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>

#include "backend/backend_flags.h"
#include "common/atomic_file.h"
#include "common/cli_flags.h"
#include "common/cli_main.h"
#include "common/error.h"
#include "common/json_util.h"
#include "eval/compare_reports.h"
#include "eval/evaluate.h"
#include "eval/metrics_summary.h"
#include "eval/prediction_records.h"

namespace {

const char* kProgram = "clipcap-eval";

struct ScoreFlags {
  std::string predictions, results, annotations, out;
};

int run_score(const ScoreFlags& f) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<clipcap::PredictionRecord> records;
  nlohmann::json source;
  if (!f.predictions.empty()) {
    records = clipcap::read_predictions_jsonl(f.predictions);
    source = {{"predictions", f.predictions}};
  } else {
    records = clipcap::read_coco_results(f.results, f.annotations);
    source = {{"results", f.results}, {"annotations", f.annotations}};
  }
  const std::vector<clipcap::ScoredItem> items = clipcap::scored_items(records);
  const clipcap::CaptionScores scores = clipcap::score_captions(items);
  nlohmann::json metrics;
  metrics["metrics"] = clipcap::metric_values(scores, nullptr);
  metrics["counts"] = clipcap::metric_counts(items);
  metrics["source"] = source;
  metrics["tool"] = kProgram;
  metrics["tool_version"] = CLIPCAP_VERSION;
  metrics["time_s"] = {{"total", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  // Files first: the table on stdout says the scores were kept.
  if (!f.out.empty()) {
    std::filesystem::create_directories(f.out);
    clipcap::write_predictions_jsonl(f.out + "/predictions.jsonl", records, scores, nullptr);
    clipcap::write_json_atomic(f.out + "/metrics.json", metrics);
  }
  std::cout << clipcap::metrics_table(metrics["metrics"]);
  return 0;
}

int run(int argc, char** argv) {
  CLI::App app{"Evaluate a clipcap model on a dataset split with the COCO caption metrics (and CLIPScore), "
               "score predictions made elsewhere, or compare reports.",
               kProgram};
  app.require_subcommand(0, 1);

  clipcap::EvaluateOptions eval;
  clipcap::BackendFlags backend_flags;
  app.add_option("--data", eval.data_dir, "dataset directory written by clipcap-data build");
  app.add_option("--split", eval.split, "split to caption: train, val or test")->capture_default_str();
  app.add_option("--out", eval.out_dir, "report directory to write");
  app.add_option("--images", eval.images_dir, "images root (default: the dataset's meta.json source.images)");
  app.add_option("--run", eval.run_dir, "clipcap-train run directory for the training curves (default: MODEL/..)");
  app.add_option("--clip", eval.clip_dir, "HF CLIP directory with text tower and tokenizer: adds CLIPScore and RefCLIPScore");
  app.add_option("--embeddings", eval.embeddings,
                 "auto: the dataset's stored embeddings when they are the model's (kind, dim, spot check), "
                 "stored: insist on them, model: embed every image with the model's CLIP")
      ->check(CLI::IsMember({"auto", "stored", "model"}))
      ->capture_default_str();
  app.add_option("--batch-size", eval.batch_size, "images per captioning batch")->capture_default_str();
  app.add_option("--report-images", eval.report_images, "images in the report's grid")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--best-worst", eval.best_worst, "images in the report's best and worst sections")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--render", eval.render,
               "also write OUT/<model name>_<S|L>/: each image with its caption drawn under it (upstream's evaluate.py)");
  clipcap::add_backend_flags(app, backend_flags, /*model_required=*/false);
  clipcap::add_remote_backend_flags(app, backend_flags);

  ScoreFlags score;
  CLI::App* score_cmd = app.add_subcommand("score", "score predictions made elsewhere (no model needed)");
  auto* pred_opt = score_cmd->add_option("--predictions", score.predictions,
                                         "JSONL: one {\"image\", \"prediction\", \"references\"} per line");
  auto* res_opt = score_cmd->add_option("--results", score.results, "COCO results JSON: [{\"image_id\", \"caption\"}]")
                      ->excludes(pred_opt);
  auto* ann_opt = score_cmd->add_option("--annotations", score.annotations,
                                        "COCO annotations JSON: {\"images\", \"annotations\": [{\"image_id\", \"caption\"}]}")
                      ->excludes(pred_opt);
  res_opt->needs(ann_opt);
  ann_opt->needs(res_opt);
  score_cmd->add_option("--out", score.out, "also write metrics.json and predictions.jsonl (per-image scores) here");

  std::vector<std::string> compare_dirs;
  std::string compare_html;
  CLI::App* compare_cmd = app.add_subcommand("compare", "one table of metrics across report directories");
  compare_cmd->add_option("reports", compare_dirs, "report directories (each with metrics.json)")->required();
  compare_cmd->add_option("--html", compare_html, "also write the comparison as an HTML page");

  if (auto code = clipcap::parse_flags(app, argc, argv)) return *code;

  if (score_cmd->parsed()) {
    if (score.predictions.empty() && score.results.empty())
      throw clipcap::Error("score: give --predictions FILE, or --results and --annotations");
    return run_score(score);
  }
  if (compare_cmd->parsed()) {
    const auto runs = clipcap::load_reports(compare_dirs);
    if (!compare_html.empty()) clipcap::refuse_to_overwrite_reports(compare_html, compare_dirs);
    std::cout << clipcap::comparison_text(runs);
    if (!compare_html.empty()) clipcap::write_file_atomic(compare_html, clipcap::comparison_html(runs));
    return 0;
  }

  eval.model_dir = backend_flags.model;
  eval.runtime = backend_flags.runtime;
  const std::string no_model_needed = "-";  // a remote backend has no model directory
  const std::string* model = backend_flags.backend == "local" ? &eval.model_dir : &no_model_needed;
  for (const auto& [value, flag] : {std::pair{model, "--model"}, {&eval.data_dir, "--data"}, {&eval.out_dir, "--out"}})
    if (value->empty()) {
      std::cerr << kProgram << ": error: " << flag << " is required (or use the score / compare subcommands)\n"
                << "Run with --help for more information.\n";
      return 2;
    }
  // A batch is one CLIP forward and one generation batch, as before backends existed.
  // The CLIP of --clip (CLIPScore) reranks too unless another is named.
  if (backend_flags.rerank_clip.empty() && backend_flags.decoding.rerank != "none" && backend_flags.backend == "local")
    backend_flags.rerank_clip = eval.clip_dir;
  clipcap::LoadedBackend loaded = clipcap::load_backend(backend_flags, app, {eval.batch_size, eval.batch_size});
  eval.decoding = loaded.decoding;
  const nlohmann::json metrics = clipcap::evaluate(*loaded.backend, eval);
  std::cout << clipcap::metrics_table(metrics["metrics"]);
  std::cerr << kProgram << ": wrote " << eval.out_dir << "/report.html\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return clipcap::run_main(kProgram, [&] { return run(argc, argv); }); }
