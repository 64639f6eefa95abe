// The pipelined, resumable build of an embedding dataset (data/embedding_dataset.h), and the
// merge of shard outputs.
//
//   clipcap::BuildOptions opts;
//   opts.captions = "results.csv";  opts.images = "flickr30k_images";  opts.clip = "clip-vit-base-patch32";
//   opts.out = "data/flickr30k";
//   clipcap::BuildResult r = clipcap::build_embedding_dataset(opts);   // r.finished == false: stopped
//
// Plan: the caption source (data/dataset_sources.h) gives images in first-appearance order; splits
// are decided over ALL of them (data/dataset_split.h); a shard i/N then takes plan positions with
// position % N == i. Its work list is cut into chunks of batch_size images: one chunk = one CLIP
// forward = one file.
//
// Pipeline: `workers` threads each take the next unfinished chunk, decode (image/image_io.h) and
// preprocess (model/image_processor.h) its images into one pixel batch, and hand it to a bounded
// queue; the calling thread runs the batched CLIP forwards and writes each chunk. A bad image is
// recorded with its reason and the run goes on (strict: the first one is fatal).
//
// Resume: everything happens in <out>.partial/: args.json (every argument that changes the
// output, plus the plan's SHA-256) and chunk_NNNNNN.safetensors (tensor image_embeds (n, D) f32,
// metadata "rows" = plan positions embedded, "errors" = the chunk's bad images), each written
// atomically, so the chunk files ARE the progress journal. A rerun with the same arguments skips
// finished chunks; other arguments are an error unless restart is set. Same chunks, same batches:
// the final files are byte-identical to an uninterrupted run's. The dataset is assembled in
// <out>.partial/final (meta.json last), renamed to <out>, and <out>.partial removed: <out> only
// ever appears complete.
// Interrupt: when *stop becomes true, the chunk being embedded is finished and written, and the
// build returns finished = false. CLIPCAP_TEST_ABORT_AFTER_CHUNKS=N (tests only) _exit()s after
// N chunks written, like a kill -9.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/progress.h"
#include "common/runtime.h"
#include "common/shard_spec.h"
#include "data/dataset_sources.h"
#include "data/dataset_split.h"
#include "image/image_io.h"

namespace clipcap {

struct BuildOptions {
  std::string captions;                     // captions file (results.csv, dataset_*.json, ...)
  std::string images;                       // root the captions' image paths are relative to
  std::string clip;                         // HF CLIP directory (config.json, weights, preprocessor_config.json)
  std::string out;                          // output dataset directory
  SourceOptions source;                     // --format and its column options
  SplitOptions split;                       // --seed --train --val
  std::string embedding = "pooler_output";  // pooler_output (upstream) | image_embeds (projected)
  std::string store_dtype = "f32";          // f32 | f16
  RuntimeOptions runtime;                   // --threads --dtype --device (apply_runtime is the caller's)
  int batch_size = 32;                      // images per CLIP forward (and per chunk file)
  int workers = 0;                          // decode/preprocess threads; 0 = all cores
  ShardSpec shard;                          // --shard i/N
  bool strict = false;                      // the first bad row or image is fatal
  bool restart = false;                     // discard <out>.partial left by other arguments
  bool overwrite = false;                   // replace a finished dataset at <out>
  ImageReadLimits limits;                   // absurd dimensions are a bad item
  const std::atomic<bool>* stop = nullptr;  // becomes true: finish the current chunk and return
  ProgressOptions progress;                 // where and how the progress line goes
};

struct BuildResult {
  bool finished = false;  // false: stopped early; rerun the same command to resume
  std::string out, work_dir;
  int64_t planned = 0;    // images in the plan (all shards)
  int64_t to_embed = 0;   // images this run (this shard) had to embed
  int64_t resumed = 0;    // of which done by earlier runs
  int64_t done = 0;       // of which done now (earlier runs included), in finished chunks
  int64_t embedded = 0;   // rows in the dataset
  int64_t captions = 0;
  int64_t image_errors = 0, row_errors = 0, recovered_rows = 0;
  std::map<std::string, int64_t> splits;  // train/val/test -> images
  double seconds = 0, images_per_second = 0;  // this run's embedding work
};

BuildResult build_embedding_dataset(const BuildOptions& opts);

// Joins the datasets written with --shard 0/N ... N-1/N into one at `out`, in plan order: the same
// index.jsonl, errors.jsonl and meta.json as an unsharded build (embeddings within float noise,
// since batches differ). Errors: a missing or duplicated shard, shards of different builds.
struct MergeResult {
  int64_t images = 0, captions = 0, shards = 0;
};
MergeResult merge_embedding_datasets(const std::string& out, const std::vector<std::string>& shard_dirs,
                                     bool overwrite = false);

// "i/N" -> (i, N); Error unless 0 <= i < N.

}  // namespace clipcap
