// The training configuration: upstream's ConfigS/ConfigL fields under their own names, plus what
// clipcap adds (freeze policy, schedule kind, optimizer, a from-scratch decoder).
//
//   nlohmann::json j = clipcap::train_config_defaults();
//   clipcap::merge_config(j, clipcap::read_json("configs/small.json"), "configs/small.json");
//   clipcap::merge_config(j, {{"epochs", 10}}, "command line");
//   clipcap::TrainConfig cfg = clipcap::TrainConfig::from_json(j, "configs/small.json");
//
// Every key has a default (train_config_defaults()), so a config file names only what it changes;
// unknown keys are an error (a typo must not silently train with a default). Keys starting with
// "_" are comments. `lr` is the real peak learning rate (upstream's LambdaLR squared it).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "model/mapping.h"

namespace clipcap {

// A decoder trained from scratch with a SentencePiece tokenizer trained on the training captions.
struct ScratchDecoderConfig {
  bool enabled = false;
  int64_t n_layer = 3, n_embd = 128, n_head = 4;
  int64_t vocab_size = 2000;              // SentencePiece pieces (incl. unk/bos/eos/pad)
  std::string tokenizer_model_type = "unigram";  // unigram | bpe
  double dropout = 0.1;                   // embd/attn/resid dropout of the new decoder
};

struct TrainConfig {
  // ---- upstream ConfigS / ConfigL names -------------------------------------------------------
  std::string clip_model;      // HF CLIP directory the dataset was embedded with ("" = the dataset's)
  std::string text_model;      // HF GPT-2 directory (unused with decoder.from_scratch)
  uint64_t seed = 100;         // shuffling, dropout, initialisation
  int num_workers = 2;         // kept for upstream parity; batches come from memory here
  double train_size = 0.84, val_size = 0.13;  // used by clipcap-data (the split lives in the dataset)
  int epochs = 150;
  double lr = 3e-3;            // peak learning rate
  double k = 0.33;             // upstream schedule: share of training spent warming up
  int batch_size_exp = 6;      // batch size = 2^batch_size_exp
  int64_t ep_len = 4, num_layers = 6, n_heads = 16, forward_expansion = 4;  // the mapping
  int max_len = 40;            // caption tokens (incl. EOS) trained on; also the decoding default
  double dropout = 0.1;        // mapping dropout
  std::string weights_dir = "runs/small";  // the run directory when --out is not given

  // ---- clipcap additions ------------------------------------------------------------------------
  std::string freeze = "upstream";     // upstream | mapping-only | full
  std::string schedule = "upstream";   // upstream (triangular) | cosine | linear | constant
  std::string schedule_unit = "step";  // step | epoch: how often the lr changes
  double warmup = 0.05;                // cosine/linear: share of training in linear warmup
  std::string optimizer = "adam";      // adam | adamw
  double weight_decay = 0.0;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
  double grad_clip = 1.3;              // max grad L2 norm (0 = off)
  int grad_accum = 1;                  // micro-batches per optimizer step
  std::string autocast = "none";       // none | bf16 (forward/backward in bf16, weights f32)
  bool lowercase = false;              // caption normalisation before tokenising
  bool strip = true;
  bool normalize_prefix_input = false; // L2-normalise the CLIP vector before the mapping
  // Training only: Gaussian noise added to each CLIP vector, about prefix_noise times its length
  // (per-dimension std prefix_noise * |e| / sqrt(dim)), so the decoder learns to read embeddings
  // that moved, as those of unseen art styles do (CapDec's noise injection). 0 = off.
  double prefix_noise = 0;
  int save_every = 1;                  // epochs between last/ checkpoints (the final one always)
  int64_t log_every = 0;               // optimizer steps between steps.jsonl records and log lines (0 = off)
  int val_samples = 4;                 // val images captioned (greedy) after each epoch
  ScratchDecoderConfig decoder;        // "decoder": {"from_scratch": true, ...}

  int64_t batch_size() const { return int64_t{1} << batch_size_exp; }
  static TrainConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
};

nlohmann::json train_config_defaults();
// The mapping's shape and dropout from the config (its widths come from the CLIP and GPT-2 configs).
MappingConfig mapping_config(const TrainConfig& cfg);
// Copies `patch` into `config` key by key ("decoder" merged field by field); Error naming `where`
// for keys that are not configuration fields.
void merge_config(nlohmann::json& config, const nlohmann::json& patch, const std::string& where);
// "key=value" from the command line: value parsed as JSON when it is JSON (numbers, true, objects),
// else taken as a string. "decoder.n_layer=4" reaches into the decoder section.
void apply_override(nlohmann::json& config, const std::string& assignment);

}  // namespace clipcap
