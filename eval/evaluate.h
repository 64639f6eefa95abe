// `clipcap-eval`: caption every image of a dataset split with a model, score the captions and
// write the report directory.
//
//   clipcap::LocalBackend model(clipcap::Captioner::load("runs/small/best"), "runs/small/best");
//   clipcap::EvaluateOptions o;  o.model_dir = "runs/small/best";  o.data_dir = "data/flickr30k-b32";
//   o.out_dir = "reports/small";  o.decoding = model.captioner().config().decoding;
//   nlohmann::json metrics = clipcap::evaluate(model, o);   // also written to out_dir/metrics.json
//
// Captions come from a caption backend (backend/caption_backend.h), batch_size images at a time.
//
// out_dir receives:
//   predictions.jsonl  one line per image: image, prediction, references, scores (per-image BLEU-1..4,
//                      ROUGE-L, CIDEr-D, CLIPScore/RefCLIPScore with --clip)
//   metrics.json       metrics (corpus values), counts, model, data, embeddings, decoding, time_s, ...
//   report.html        one page (eval/html_report.h), images under images/ as small JPEG thumbnails
//   <model name>_<SIZE>/  with render: every image with its caption drawn under it (upstream's
//                      evaluate.py layout). The model name is the model directory's basename; SIZE
//                      is upstream's size letter (backend/local_backend.h model_size_label). Files
//                      keep the image's relative path, extension .jpg.
//
// Which embeddings are captioned (embeddings = "auto"): the dataset's stored ones when they can be
// the backend's (CaptionBackend::embedding_space(): the local model's prefix input, pooler_output /
// image_embeds and its width): meta.json's embedding kind and dim equal it AND, as the dataset records the CLIP config's SHA-256 of a file the
// model directory does not keep, a spot check agrees: up to 2 split images embedded by the model
// match their stored rows (max |diff| <= 5% of the row's max |value|). Otherwise every image is
// embedded by the model's own CLIP. When no image can be read for the check, stored embeddings
// with matching kind and dim are used (and metrics.json says so). "stored" insists on them (Error
// when kind or dim differ); "model" always re-embeds.
// Images come from meta.json's source.images (or images_dir) joined with index.jsonl's paths.
#pragma once

#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>

#include "common/runtime.h"
#include "model/decode_options.h"

namespace clipcap {

class CaptionBackend;

struct EvaluateOptions {
  std::string model_dir;             // for the report and the default run dir
  std::string data_dir;              // a clipcap-data dataset
  std::string split = "test";
  std::string out_dir;
  std::string images_dir;            // "" = meta.json source.images
  std::string run_dir;               // "" = model_dir/.. when it holds metrics.jsonl / train_config.json
  std::string clip_dir;              // "" = no CLIPScore
  std::string embeddings = "auto";   // auto | stored | model
  int batch_size = 32;               // images per captioning batch
  int report_images = 48;            // images in the report's grid (the first ones of the split)
  int best_worst = 8;                // images in each of the best / worst sections
  int thumbnail_size = 256;          // longest side of the report's JPEG thumbnails
  bool render = false;               // also write <out>/<model name>_<SIZE>/
  DecodeOptions decoding;            // resolved decoding options
  RuntimeOptions runtime;            // recorded in metrics.json (already applied by the caller)
  std::ostream* log = nullptr;       // progress and notes; nullptr = std::cerr
};

nlohmann::json evaluate(CaptionBackend& backend, const EvaluateOptions& opts);

}  // namespace clipcap
