// clipcap-data: build, merge and inspect embedding datasets (format: data/embedding_dataset.h).
//
//   clipcap-data build --captions results.csv --images flickr30k_images --clip CLIP_DIR --out DIR
//       [--format flickr|karpathy|coco|jsonl|csv] [--embedding pooler_output|image_embeds]
//       [--store-dtype f32|f16] [--batch-size 32] [--workers 0] [--seed 100 --train 0.84 --val 0.13]
//       [--shard i/N] [--strict] [--restart] [--overwrite] [runtime flags]
//   clipcap-data merge OUT SHARD_DIR...
//   clipcap-data stats DIR [--tokenizer TOKENIZER_DIR]
//   clipcap-data tokenize --tokenizer DIR [--decode]      (stdin lines -> ids / ids -> text)
//
// build is resumable: rerun the same command after Ctrl-C or a crash. Exit codes: 0 done,
// 1 error (including "no image could be embedded"), 2 usage error, 130 interrupted (resumable).
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <sstream>
#include <tuple>

#include "common/cli_flags.h"
#include "common/cli_main.h"
#include "common/error.h"
#include "common/interrupt.h"
#include "common/strings.h"
#include "data/dataset_builder.h"
#include "data/dataset_stats.h"
#include "data/source_flags.h"
#include "model/tokenizers/tokenizer.h"

namespace {

const char* kProgram = "clipcap-data";

int build(clipcap::BuildOptions opts, const std::string& shard) {
  if (!shard.empty()) opts.shard = clipcap::ShardSpec::parse(shard);
  clipcap::apply_runtime(opts.runtime);
  opts.stop = &clipcap::install_interrupt_handler(std::string(kProgram) + ": interrupted: finishing the current batch");
  clipcap::BuildResult r = clipcap::build_embedding_dataset(opts);
  if (!r.finished) {
    std::cerr << kProgram << ": interrupted: " << r.done << " of " << r.to_embed << " images done, kept in "
              << r.work_dir << "; rerun the same command to resume\n";
    return 130;
  }
  std::cerr << kProgram << ": wrote " << r.out << ": " << clipcap::plural(r.embedded, "image") << " (train "
            << r.splits["train"] << ", val " << r.splits["val"] << ", test " << r.splits["test"] << "), "
            << clipcap::plural(r.captions, "caption");
  if (r.resumed > 0) std::cerr << "; " << r.resumed << " done by an earlier run";
  std::cerr << "; " << clipcap::format_number(r.images_per_second, "%.1f") << " img/s\n";
  if (r.image_errors + r.row_errors > 0)
    std::cerr << kProgram << ": lost " << clipcap::plural(r.image_errors, "image") << " and " << clipcap::plural(r.row_errors, "caption row")
              << ": see " << r.out << "/errors.jsonl\n";
  if (r.recovered_rows > 0)
    std::cerr << kProgram << ": recovered " << clipcap::plural(r.recovered_rows, "malformed caption row") << "\n";
  return 0;
}

int tokenize(const std::string& dir, bool decode) {
  auto tok = clipcap::load_tokenizer(dir);
  std::string line;
  for (int64_t n = 1; std::getline(std::cin, line); ++n) {
    if (!decode) {
      std::string sep;
      for (int64_t id : tok->encode(line)) std::cout << sep << id, sep = " ";
      std::cout << "\n";
      continue;
    }
    std::istringstream in(line);
    std::vector<int64_t> ids;
    std::string word;
    while (in >> word) {
      char* end = nullptr;
      long long id = std::strtoll(word.c_str(), &end, 10);
      if (*end != '\0' || id < 0 || id >= tok->vocab_size())
        throw clipcap::Error("stdin:" + std::to_string(n) + ": '" + word + "' is not a token id of " + dir + " (0.." +
                             std::to_string(tok->vocab_size() - 1) + ")");
      ids.push_back(id);
    }
    std::cout << tok->decode(ids) << "\n";
  }
  return 0;
}

int run(int argc, char** argv) {
  CLI::App app{"Build, merge and inspect clipcap embedding datasets.", kProgram};
  app.require_subcommand(1);

  clipcap::BuildOptions b;
  clipcap::SourceFlags source;
  std::string shard;
  CLI::App* build_cmd = app.add_subcommand("build", "embed images + captions into a dataset directory (resumable)");
  build_cmd->add_option("--captions", b.captions, "captions file (results.csv, dataset_*.json, captions_*.json, .jsonl, .csv)")
      ->required();
  build_cmd->add_option("--images", b.images, "directory the captions' image paths are relative to")->required();
  build_cmd->add_option("--clip", b.clip, "HF CLIP directory")->required();
  build_cmd->add_option("-o,--out", b.out, "output dataset directory")->required();
  build_cmd->add_option("--embedding", b.embedding, "pooler_output (upstream) | image_embeds (projected)")->capture_default_str();
  build_cmd->add_option("--store-dtype", b.store_dtype, "f32 | f16")->capture_default_str();
  build_cmd->add_option("--batch-size", b.batch_size, "images per CLIP forward (and per resumable chunk)")->capture_default_str();
  build_cmd->add_option("--workers", b.workers, "decode/preprocess threads (0 = all cores)")->capture_default_str();
  build_cmd->add_option("--shard", shard, "i/N: embed only images with plan position % N == i (join with merge)");
  build_cmd->add_option("--max-pixels", b.limits.max_pixels, "larger images are reported as bad items")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  build_cmd->add_flag("--strict", b.strict, "stop at the first bad row or image");
  build_cmd->add_flag("--restart", b.restart, "discard an unfinished build of OUT made with other arguments");
  build_cmd->add_flag("--overwrite", b.overwrite, "replace a finished dataset at OUT");
  clipcap::add_caption_source_flags(*build_cmd, source, "Caption file and split");
  clipcap::add_runtime_flags(*build_cmd, b.runtime);
  build_cmd->footer(
      "Bad images and rows go to OUT/errors.jsonl and the run goes on (--strict: fatal). Ctrl-C or a crash: "
      "rerun the same command to resume from OUT.partial/.");

  std::string merge_out;
  std::vector<std::string> merge_shards;
  bool merge_overwrite = false;
  CLI::App* merge_cmd = app.add_subcommand("merge", "join shard datasets (--shard i/N) into one");
  merge_cmd->add_option("out", merge_out, "output dataset directory")->required();
  merge_cmd->add_option("shards", merge_shards, "shard dataset directories")->required();
  merge_cmd->add_flag("--overwrite", merge_overwrite, "replace a finished dataset at OUT");

  std::string stats_dir, stats_tokenizer;
  CLI::App* stats_cmd = app.add_subcommand("stats", "counts per split and caption length distribution");
  stats_cmd->add_option("dir", stats_dir, "dataset directory")->required();
  stats_cmd->add_option("--tokenizer", stats_tokenizer, "tokenizer directory: lengths in tokens (else words)");

  std::string tok_dir;
  bool decode = false;
  CLI::App* tok_cmd = app.add_subcommand("tokenize", "stdin lines -> token ids (or ids -> text with --decode)");
  tok_cmd->add_option("--tokenizer", tok_dir, "tokenizer directory (vocab.json + merges.txt, tokenizer.model, ...)")
      ->required();
  tok_cmd->add_flag("--decode", decode, "read lines of ids, write text");

  if (auto code = clipcap::parse_flags(app, argc, argv)) return *code;

  if (build_cmd->parsed()) {
    b.source = source.source_options();
    b.split = source.split;
    return build(b, shard);
  }
  if (merge_cmd->parsed()) {
    auto r = clipcap::merge_embedding_datasets(merge_out, merge_shards, merge_overwrite);
    std::cerr << kProgram << ": wrote " << merge_out << ": " << clipcap::plural(r.images, "image") << ", "
              << clipcap::plural(r.captions, "caption") << " from " << clipcap::plural(r.shards, "shard") << "\n";
    return 0;
  }
  if (stats_cmd->parsed()) {
    clipcap::EmbeddingDataset ds(stats_dir);
    std::unique_ptr<clipcap::Tokenizer> tok;
    if (!stats_tokenizer.empty()) tok = clipcap::load_tokenizer(stats_tokenizer);
    std::cout << clipcap::format_dataset_stats(clipcap::compute_dataset_stats(ds, tok.get()));
    return 0;
  }
  return tokenize(tok_dir, decode);
}

}  // namespace

int main(int argc, char** argv) {
  return clipcap::run_main(kProgram, [&] { return run(argc, argv); });
}
